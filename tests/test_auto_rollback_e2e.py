"""Automatic rollback end to end, every part real: a sqlite-backed MLflow registry, a real
`mlops-console serve` endpoint with its chaos switch, redeployed by a real deploy hook, a real
`mlops-console watch` process, a promote by another process (the CLI, as a pipeline would), and
apprise pages to a loopback sink.

Promote v3, make v3 fail: the watcher rolls the alias back to v2, redeploys, verifies, pages once and
writes the audit rows. Killed with -9 and started again inside the window, the watcher does not roll
back a second time when the endpoint fails again."""

from __future__ import annotations

import contextlib
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

from mlops_console.core.store import Store
from tests._loopback import Sink
from tests._serve_helpers import free_port, poll_until, process_env, redeploy_hook, spawn, wait_ping
from tests.fixtures_mlflow import MlflowRegistry

CLI = [sys.executable, "-m", "mlops_console"]
# Two model servers started, stopped and started again, and several CLI processes: on a loaded
# 2-core machine that alone can pass the default 300 s guard against hangs.
pytestmark = pytest.mark.timeout(600)


class Stack:
    def __init__(self, root: Path, registry: MlflowRegistry, sink: Sink) -> None:
        self.root, self.sink = root, sink
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.pidfile, self.log = root / "serve.pid", root / "serve.log"
        self.env = process_env(registry.tracking_uri)
        command = redeploy_hook(root, self.pidfile, self.port, self.log, "--chaos")
        self.config = root / "console.toml"
        self.config.write_text(
            textwrap.dedent(f"""
            [registry]
            tracking_uri = "{registry.tracking_uri}"
            [store]
            path = "{root / "console.db"}"
            [[endpoints]]
            name = "iris-prod"
            url = "{self.url}"
            model = "iris"
            alias = "production"
            interval = 0.5
            timeout = 2
            deploy = {{ command = {json.dumps(command)}, timeout = 60, verify_timeout = 120 }}
            [[notifications]]
            url = "{sink.url}"
            [[auto_rollback]]
            model = "iris"
            watch = "10m"
            """)
        )
        self.store = Store(root / "console.db")
        self.watcher: subprocess.Popen[str] | None = None

    def serve(self, version: str) -> None:
        cmd = [*CLI, "serve", f"models:/iris/{version}", "--port", str(self.port), "--chaos"]
        proc = spawn(cmd, self.log, self.env)
        self.pidfile.write_text(str(proc.pid))
        wait_ping(self.url, proc, self.log)

    def watch(self) -> None:
        with open(self.root / "watch.log", "a") as log:
            self.watcher = subprocess.Popen(
                [*CLI, "--config", str(self.config), "watch", "--log-format", "json"],
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=self.env,
                text=True,
            )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
        )

    def status(self) -> dict:
        rows = self.store.read_status()
        return rows[0] if rows else {}

    def chaos(self, error_rate: float) -> None:
        httpx.post(f"{self.url}/chaos", json={"error_rate": error_rate}, timeout=5).raise_for_status()

    def served(self) -> str | None:
        return httpx.get(f"{self.url}/model-info", timeout=5).json().get("model_version")

    def alias(self) -> str:
        models = json.loads(self.cli("models", "--json").stdout)
        return next(m for m in models if m["name"] == "iris")["aliases"]["production"]

    def auto_pages(self) -> list[dict]:
        return [m for m in self.sink.received if m["title"].startswith("[AUTO-ROLLBACK")]

    def stop(self) -> None:
        if self.watcher is not None and self.watcher.poll() is None:
            self.watcher.send_signal(signal.SIGTERM)
            self.watcher.wait(30)
        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(self.pidfile.read_text()), signal.SIGTERM)


@pytest.fixture
def stack(mlflow_registry: MlflowRegistry, tmp_path: Path) -> Iterator[Stack]:
    sink = Sink().start()
    s = Stack(tmp_path, mlflow_registry, sink)
    try:
        yield s
    finally:
        s.stop()
        sink.stop()


@pytest.mark.slow
def test_a_bad_promote_is_rolled_back_redeployed_verified_and_paged_once(stack: Stack) -> None:
    stack.serve("2")
    stack.watch()
    poll_until(lambda: stack.status().get("served_version") == "2", 60, "the watcher to see v2 served")

    promoted = stack.cli("promote", "iris", "3", "--yes", "--by", "alice", "--reason", "retrained")
    assert promoted.returncode == 0, promoted.stderr
    assert stack.served() == "3"
    poll_until(lambda: stack.status().get("served_version") == "3", 60, "the watcher to see v3 served")

    broken_at = time.time()
    stack.chaos(1.0)
    poll_until(lambda: stack.auto_pages(), 180, "the automatic rollback's page")
    paged_at = stack.auto_pages()[0]["_at"]

    assert stack.alias() == "2" and stack.served() == "2"
    [page] = stack.auto_pages()
    assert page["title"] == "[AUTO-ROLLBACK] iris production: v3 -> v2, verified"
    assert "Deploy: deploy of iris v2 to iris-prod verified" in page["message"]
    [decision] = stack.store.auto_rollback_decisions()
    assert decision.alert_id is not None and decision.state == "rolled_back"
    alert = stack.store.get_alert(decision.alert_id)
    assert (alert.rule, alert.endpoint, alert.version) == ("down", "iris-prod", "3")
    assert f"Why: alert #{alert.id} endpoint down (down) on iris-prod" in page["message"]

    rows = [
        (r.actor, r.action, r.result, r.from_version, r.to_version)
        for r in reversed(stack.store.list_audit(model="iris"))
        if r.action in ("promote", "rollback", "deploy")
    ]
    assert rows == [
        ("alice", "promote", "ok", "2", "3"),
        ("alice", "deploy", "ok", "2", "3"),
        ("auto-rollback", "rollback", "ok", "3", "2"),
        ("auto-rollback", "deploy", "ok", "3", "2"),
    ]
    rollback = next(r for r in stack.store.list_audit(model="iris", action="rollback"))
    assert rollback.reason is not None and rollback.reason.startswith(f"alert #{alert.id} down on iris-prod")
    deploy = rollback.detail["deploys"][0] if rollback.detail else {}
    print(
        f"\nfirst failing probe -> alert {alert.started_at - broken_at:.1f}s, alert -> rollback row "
        f"{rollback.at - alert.started_at:.1f}s, registry {rollback.detail['registry_seconds']:.2f}s, "  # type: ignore[index]
        f"hook {deploy['hook']['seconds']:.1f}s, verify {deploy['verify']['seconds']:.1f}s, "
        f"failure -> page {paged_at - broken_at:.1f}s"
    )

    # Killed with -9 inside the window and started again: v2 failing now rolls nothing back.
    assert stack.watcher is not None
    stack.watcher.send_signal(signal.SIGKILL)
    stack.watcher.wait(10)
    poll_until(lambda: stack.store.get_alert(alert.id).state == "resolved", 60, "v2 to answer again")
    stack.watch()
    stack.chaos(1.0)

    def second_alert() -> int | None:
        rows = stack.store.query("SELECT max(id) AS id FROM alerts WHERE rule='down'")
        return rows[0]["id"] if rows and (rows[0]["id"] or 0) > alert.id else None

    second = poll_until(second_alert, 60, "the second failure's alert")
    assert stack.store.get_alert(second).version == "2"
    stack.chaos(0.0)
    poll_until(lambda: stack.store.get_alert(second).state == "resolved", 60, "the second failure to resolve")
    assert stack.alias() == "2" and stack.served() == "2"
    assert len(stack.auto_pages()) == 1
    assert len(stack.store.list_audit(model="iris", action="rollback")) == 1
