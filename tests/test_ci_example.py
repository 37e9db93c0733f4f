"""`examples/ci/promote.sh` end to end, as a pipeline runs it: a real sqlite-backed MLflow registry, a
real `mlops-console serve` endpoint redeployed by a real deploy hook, the real store and audit trail.
The script gates on `status --json` and the open alerts, promotes with `--expect-current`, checks the
endpoint serves the new version, and rolls back when the post-deploy check fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_console.core.store import NewAlert, Store
from tests._serve_helpers import REPO, free_port, poll_until, process_env, redeploy_hook, spawn, wait_ping

SCRIPT = REPO / "examples" / "ci" / "promote.sh"
BIN = Path(sys.executable).parent
CLI = [sys.executable, "-m", "mlops_console"]
# Two model servers started, stopped and started again, and several CLI processes: on a loaded
# 2-core machine that alone can pass the default 300 s guard against hangs.
pytestmark = pytest.mark.timeout(600)


class Deployment:
    def __init__(self, root: Path, tracking_uri: str) -> None:
        self.root, self.tracking_uri = root, tracking_uri
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pidfile, self.log = root / "serve.pid", root / "serve.log"
        self.env = {
            **process_env(tracking_uri),
            "MLOPS_CONSOLE_CONFIG": str(root / "console.toml"),
            "MLOPS_CONSOLE": str(BIN / "mlops-console"),
            "PYTHON": sys.executable,
            "MODEL": "iris",
            "ALIAS": "production",
            "CI_PIPELINE_URL": "https://ci.example/pipelines/42",
            "POST_DEPLOY_TIMEOUT": "90",
        }
        command = redeploy_hook(root, self.pidfile, self.port, self.log)
        (root / "console.toml").write_text(
            textwrap.dedent(f"""
            [registry]
            tracking_uri = "{tracking_uri}"
            [store]
            path = "{root / "console.db"}"
            [[endpoints]]
            name = "iris-prod"
            url = "{self.url}"
            model = "iris"
            alias = "production"
            timeout = 5
            deploy = {{ command = {json.dumps(command)}, timeout = 60, verify_timeout = 120 }}
            """)
        )
        self.store = Store(root / "console.db")  # what the watcher would have created

    def start(self, version: str) -> None:
        proc = spawn(
            [
                sys.executable,
                "-m",
                "mlops_console",
                "serve",
                f"models:/iris/{version}",
                "--port",
                str(self.port),
            ],
            self.log,
            self.env,
        )
        self.pidfile.write_text(str(proc.pid))
        wait_ping(self.url, proc, self.log)

    def stop(self) -> None:
        """Stop whichever server the hook started last (it runs in its own process group)."""
        try:
            os.killpg(int(self.pidfile.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            return
        poll_until(lambda: not _answers(self.url), 15, "the endpoint to stop")

    def pipeline(self, version: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT)],
            env={**self.env, "VERSION": version, **env},
            capture_output=True,
            text=True,
            timeout=400,
        )

    def served_version(self) -> str | None:
        return httpx.get(f"{self.url}/model-info", timeout=5).json().get("model_version")

    def alias(self) -> str:
        done = subprocess.run(
            [str(BIN / "mlops-console"), "models", "--json"], env=self.env, capture_output=True, text=True
        )
        return next(m for m in json.loads(done.stdout) if m["name"] == "iris")["aliases"]["production"]

    def audit(self) -> list[tuple[str, str, str | None, str | None]]:
        """Promotes and rollbacks, oldest first (deploys and verifications are rows of their own)."""
        rows = reversed(self.store.list_audit(model="iris"))
        return [
            (r.action, r.result, r.to_version, r.reason) for r in rows if r.action in ("promote", "rollback")
        ]


def _answers(url: str) -> bool:
    try:
        httpx.get(f"{url}/ping", timeout=0.5)
    except httpx.HTTPError:
        return False
    return True


@pytest.fixture
def deployment(mlflow_registry, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(tmp_path, mlflow_registry.tracking_uri)
    try:
        yield d
    finally:
        d.stop()


def test_pipeline_promotes_verifies_and_records_the_pipeline(deployment: Deployment) -> None:
    deployment.start("2")
    # A candidate endpoint that does not exist fails the quality gate: nothing moves.
    refused = deployment.pipeline("3", CANDIDATE_ENDPOINT="iris-staging")
    assert refused.returncode == 1, refused.stderr
    assert "candidate endpoint iris-staging: no such endpoint" in refused.stderr
    assert deployment.alias() == "2" and deployment.audit() == []

    done = deployment.pipeline("3")
    assert done.returncode == 0, done.stderr + deployment.log.read_text()[-2000:]
    assert "promoting iris production: v2 -> v3" in done.stderr
    assert deployment.alias() == "3" and deployment.served_version() == "3"
    assert deployment.audit() == [("promote", "ok", "3", "https://ci.example/pipelines/42")]


def test_pipeline_rolls_back_when_the_post_deploy_check_fails(deployment: Deployment) -> None:
    deployment.start("2")
    done = deployment.pipeline("3", POST_DEPLOY_CHECK="exit 1")
    assert done.returncode == 1, done.stderr
    assert "post-deploy check failed (POST_DEPLOY_CHECK failed): rolling back" in done.stderr
    assert deployment.alias() == "2" and deployment.served_version() == "2"
    [promote, rollback] = deployment.audit()
    assert promote == ("promote", "ok", "3", "https://ci.example/pipelines/42")
    assert rollback[:3] == ("rollback", "ok", "2")
    assert (
        rollback[3] == "post-deploy check failed: POST_DEPLOY_CHECK failed (https://ci.example/pipelines/42)"
    )


def test_pipeline_does_not_promote_past_a_down_endpoint_or_a_firing_alert(deployment: Deployment) -> None:
    # Nothing listens on the endpoint's port: the status gate refuses.
    done = deployment.pipeline("3")
    assert done.returncode == 1
    assert "gate: endpoints of iris are down: iris-prod; not promoting" in done.stderr
    assert deployment.alias() == "2" and deployment.audit() == []

    deployment.start("2")
    alert_id = deployment.store.open_alert(
        NewAlert(
            fingerprint="latency_p95/iris-prod",
            rule="latency_p95",
            endpoint="iris-prod",
            model="iris",
            version="2",
            severity="warning",
            summary="slow",
            started_at=time.time(),
        ),
        [],
    )
    done = deployment.pipeline("3")
    assert done.returncode == 1
    assert f"gate: alerts firing on iris: #{alert_id}:latency_p95@iris-prod; not promoting" in done.stderr
    assert deployment.alias() == "2" and deployment.audit() == []
