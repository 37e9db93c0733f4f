"""Promote / rollback / deploy against a real sqlite-backed MLflow registry (fresh copy per test)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.promotion import Promoter
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from tests._changes import promote, rollback
from tests.fixtures_mlflow import free_port, start_model_server, stop_process_group


def make_settings(tmp_path: Path, uri: str, endpoints: list[dict[str, Any]] | None = None) -> Settings:
    return parse_settings(
        {
            "registry": {"tracking_uri": uri, "timeout": 10},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": endpoints or [],
        }
    )


@pytest.fixture
def env(mlflow_registry, tmp_path: Path):
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri)
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def healthy(version: str | None = None):
    async def probe(_endpoint: Any) -> ProbeResult:
        return ProbeResult(ok=True, served_version=version)

    return probe


async def never_healthy(_endpoint: Any) -> ProbeResult:
    return ProbeResult(ok=False, error="connection refused")


def test_promote_moves_alias_writes_audit_and_tags(env) -> None:
    settings, store, registry = env
    result = promote(settings, store, registry, "iris", 3, actor="alice", reason="better f1")
    assert result.ok and result.changed and (result.from_version, result.to_version) == ("2", "3")
    assert registry.alias_version("iris", "production") == "3"
    [row] = store.list_audit(model="iris")
    assert (row.actor, row.action, row.alias, row.result) == (
        "alice",
        "promote",
        "production",
        "ok",
    )
    assert (row.from_version, row.to_version, row.reason) == ("2", "3", "better f1")
    tags = registry.version("iris", 3).tags
    assert tags["promoted_by"] == "alice" and tags["promoted_reason"] == "better f1" and tags["promoted_at"]
    history = json.loads(registry.get_model("iris").tags["mlops_console.history.production"])
    assert history["current"] == "3" and history["previous"] == ["2"]


def test_rollback_twice_then_nothing_left(env) -> None:
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 1, actor="a").ok  # 2 -> 1
    assert promote(settings, store, registry, "iris", 3, actor="a").ok  # 1 -> 3
    first = rollback(settings, store, registry, "iris", actor="b", reason="regression")
    assert first.ok and (first.from_version, first.to_version) == ("3", "1")
    second = rollback(settings, store, registry, "iris", actor="b")
    assert second.ok and (second.from_version, second.to_version) == ("1", "2")
    assert registry.alias_version("iris", "production") == "2"
    third = rollback(settings, store, registry, "iris", actor="b")
    assert not third.ok and third.refused and "no previous version" in third.message
    assert registry.alias_version("iris", "production") == "2"
    assert [r.result for r in store.list_audit(model="iris")] == ["refused", "ok", "ok", "ok", "ok"]


def test_rollback_from_a_fresh_store_uses_the_model_tag(env, tmp_path: Path) -> None:
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 3, actor="a").ok
    other_store = Store(tmp_path / "other.db")
    result = rollback(settings, other_store, registry, "iris", actor="b")
    assert result.ok and result.to_version == "2"


def test_rollback_without_history_is_a_clear_error(env) -> None:
    settings, store, registry = env
    result = rollback(settings, store, registry, "diabetes", actor="a")
    assert result.refused and "no previous version" in result.message


def test_rollback_refuses_after_an_outside_change(env) -> None:
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 3, actor="a").ok
    registry.set_alias("iris", "production", "1")  # someone used the MLflow UI
    result = rollback(settings, store, registry, "iris", actor="a")
    assert result.refused and "outside the console" in result.message


def test_expect_current_detects_a_concurrent_change(env) -> None:
    settings, store, registry = env
    promoter = Promoter(settings, store, registry)
    plan = promoter.plan_promote("iris", 3)  # what engineer A saw: v2
    assert plan.ok and plan.current_version == "2"
    assert promote(settings, store, registry, "iris", 1, actor="bob").ok  # B moves it first
    result = promoter.apply(plan, actor="alice")
    assert result.refused and "changed since you looked" in result.message
    assert registry.alias_version("iris", "production") == "1"
    explicit = promote(settings, store, registry, "iris", 3, actor="alice", expect_current=2)
    assert explicit.refused and registry.alias_version("iris", "production") == "1"
    assert promote(settings, store, registry, "iris", 3, actor="alice", expect_current="1").ok


def test_refuses_missing_non_ready_and_reserved(env, mlflow_registry) -> None:
    settings, store, registry = env
    mlflow_registry.set_status("iris", 3, "PENDING_REGISTRATION")
    cases = [
        ({"model": "iris", "version": 3}, "PENDING_REGISTRATION, not READY"),
        ({"model": "iris", "version": 42}, "iris v42 does not exist"),
        ({"model": "ghost", "version": 1}, "model 'ghost' does not exist"),
        ({"model": "iris", "version": 1, "alias": "latest"}, "reserved"),
    ]
    for kwargs, expected in cases:
        result = promote(settings, store, registry, actor="a", **kwargs)
        assert result.refused and expected in result.message, result.message
    assert registry.alias_version("iris", "production") == "2"
    assert {r.result for r in store.list_audit()} == {"refused"}


def test_promote_to_the_current_version_is_a_noop(env) -> None:
    settings, store, registry = env
    result = promote(settings, store, registry, "iris", 2, actor="a")
    assert result.ok and not result.changed and store.list_audit() == []


def test_legacy_stage_promote_and_rollback(env) -> None:
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 1, stage="production", actor="a").ok
    assert promote(settings, store, registry, "iris", 2, stage="Production", actor="a").ok
    assert registry.stage_version("iris", "Production") == "2"
    result = rollback(settings, store, registry, "iris", stage="Production", actor="a")
    assert result.ok and result.to_version == "1" and registry.stage_version("iris", "Production") == "1"
    assert registry.alias_version("iris", "production") == "2"  # the alias is untouched


def test_unreachable_registry_fails_fast_and_audits_failure(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(tmp_path, f"http://127.0.0.1:{port}")
    settings.registry.timeout = 2
    store = Store(settings.store.path)
    result = promote(settings, store, RegistryClient(settings.registry), "iris", 3, actor="a")
    assert not result.ok and not result.changed and "registry unreachable" in result.message
    assert [r.result for r in store.list_audit()] == ["failed"]


# -- deploy hooks ------------------------------------------------------------------------------------------
def deploy_env(mlflow_registry, tmp_path: Path, deploy: dict[str, Any]):
    endpoints = [
        {"name": "iris-prod", "url": "http://127.0.0.1:9", "model": "iris", "deploy": deploy},
        {
            "name": "iris-staging",
            "url": "http://127.0.0.1:9",
            "model": "iris",
            "alias": "staging",
            "deploy": deploy,
        },
        {"name": "iris-nohook", "url": "http://127.0.0.1:9", "model": "iris"},
    ]
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, endpoints)
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def test_deploy_hook_success_runs_with_placeholders(mlflow_registry, tmp_path: Path) -> None:
    marker = tmp_path / "deployed.txt"
    settings, store, registry = deploy_env(
        mlflow_registry,
        tmp_path,
        {
            "command": f"echo {{model}} {{alias}} {{version}} > {marker}; echo done",
            "verify_timeout": 5,
        },
    )
    plan = Promoter(settings, store, registry).plan_promote("iris", 3)
    assert plan.endpoints == ["iris-prod"] and plan.not_redeployed == ["iris-nohook"]
    result = promote(settings, store, registry, "iris", 3, actor="a", probe=healthy())
    assert result.ok, result.message
    assert marker.read_text().split() == ["iris", "production", "3"]
    deploy_row = store.list_audit(action="deploy")[0]
    assert deploy_row.result == "ok" and deploy_row.endpoint == "iris-prod"
    assert deploy_row.detail["hook"]["exit_code"] == 0 and "done" in deploy_row.detail["hook"]["output"]
    promote_row = store.list_audit(action="promote")[0]
    assert promote_row.detail["deploys"][0]["ok"] is True
    assert any("iris-nohook" in w for w in result.warnings)


def test_deploy_hook_failure_alerts_but_keeps_the_promote(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(mlflow_registry, tmp_path, {"command": "echo boom >&2; exit 3"})
    result = promote(settings, store, registry, "iris", 3, actor="a", probe=healthy())
    assert not result.ok and result.changed and "hook exited 3: boom" in result.message
    assert registry.alias_version("iris", "production") == "3"
    assert store.list_audit(action="promote")[0].result == "ok"
    deploy_row = store.list_audit(action="deploy")[0]
    assert deploy_row.result == "failed" and deploy_row.detail["hook"]["exit_code"] == 3
    [alert] = store.list_alerts()
    assert alert.rule == "deploy_not_converged" and alert.severity == "critical"
    assert "deploy of iris v3 to iris-prod did not converge" in alert.summary


def test_deploy_hook_timeout_is_killed(mlflow_registry, tmp_path: Path) -> None:
    pidfile = tmp_path / "hook.pid"
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": f"echo $$ > {pidfile}; exec sleep 30", "timeout": 1}
    )
    result = promote(settings, store, registry, "iris", 3, actor="a", probe=healthy())
    assert not result.ok and "timed out after 1s" in result.message
    pid = int(pidfile.read_text())
    assert not Path(f"/proc/{pid}").exists(), "the hook was left running"


def test_verification_timeout_raises_an_alert(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": "true", "verify_timeout": 2}
    )
    result = promote(settings, store, registry, "iris", 3, actor="a", probe=never_healthy)
    assert not result.ok and "did not converge" in result.message
    assert store.list_alerts()[0].summary.startswith("deploy of iris v3 to iris-prod did not converge")


def test_verification_waits_for_the_new_version(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": "true", "verify_timeout": 2}
    )
    stale = promote(settings, store, registry, "iris", 3, actor="a", probe=healthy("2"))
    assert not stale.ok and "still serves v2" in stale.message
    fresh = promote(settings, store, registry, "iris", 1, actor="a", probe=healthy("1"))
    assert fresh.ok


def test_webhook_hook(mlflow_registry, tmp_path: Path) -> None:
    import http.server
    import threading

    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                {"path": self.path, **json.loads(self.rfile.read(int(self.headers["Content-Length"])))}
            )
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/deploy/{{model}}"
        settings, store, registry = deploy_env(mlflow_registry, tmp_path, {"webhook": url})
        result = promote(settings, store, registry, "iris", 3, actor="a", probe=healthy())
    finally:
        server.shutdown()
    assert result.ok, result.message
    assert received[0]["path"] == "/deploy/iris" and received[0]["version"] == "3"
    assert store.list_audit(action="deploy")[0].detail["hook"]["exit_code"] == 202


# -- the CLI ----------------------------------------------------------------------------------------------
def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Like `mlops_console.cli.main`, without importing sibling command modules other people own."""
    from mlops_console.commands import changes, models
    from mlops_console.commands.common import CommandError

    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    sub = parser.add_subparsers()
    models.register(sub)
    changes.register(sub)
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
    except CommandError as exc:
        print(f"mlops-console: {exc}", file=sys.stderr)
        code = 1
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_promote_rollback_audit(
    registry_config: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    code, out, _ = run_cli(["--config", str(registry_config), "models"], capsys)
    assert code == 0 and "iris" in out and "production=v2" in out
    code, out, _ = run_cli(["models", "show", "iris", "--json", "--config", str(registry_config)], capsys)
    versions = json.loads(out)
    assert code == 0 and versions[0]["version"] == "3" and versions[0]["created_at"].endswith("+00:00")

    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    code, _, err = run_cli(["--config", str(registry_config), "promote", "iris", "3"], capsys)
    assert code == 2 and "not a terminal" in err and "--yes" in err

    code, out, _ = run_cli(
        [
            "--config",
            str(registry_config),
            "promote",
            "iris",
            "3",
            "--yes",
            "--reason",
            "f1",
            "--by",
            "carol",
        ],
        capsys,
    )
    assert code == 0 and "v2 -> v3" in out
    code, _, err = run_cli(
        ["--config", str(registry_config), "promote", "iris", "1", "--yes", "--expect-current", "2"], capsys
    )
    assert code == 1 and "changed since you looked" in err
    code, out, _ = run_cli(["--config", str(registry_config), "rollback", "iris", "--yes"], capsys)
    assert code == 0 and "v3 -> v2" in out
    code, out, _ = run_cli(["--config", str(registry_config), "audit", "--json"], capsys)
    rows = json.loads(out)
    assert [(r["action"], r["result"]) for r in rows] == [
        ("rollback", "ok"),
        ("promote", "refused"),
        ("promote", "ok"),
    ]
    assert rows[2]["actor"] == "carol" and rows[2]["at"].endswith("+00:00")
    code, out, _ = run_cli(["--config", str(registry_config), "audit", "--model", "iris"], capsys)
    assert code == 0 and "carol" in out and "WHO" in out


def test_cli_interactive_confirmation_shows_metrics(registry_config: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda _prompt: "n")
    code, out, _ = run_cli(["--config", str(registry_config), "promote", "iris", "3"], capsys)
    assert code == 1 and "accuracy" in out and "CURRENT" in out and "cancelled" in out
    monkeypatch.setattr("builtins.input", lambda _prompt: "y")
    code, out, _ = run_cli(["--config", str(registry_config), "promote", "iris", "3"], capsys)
    assert code == 0 and "v2 -> v3" in out


# -- a real `mlflow models serve` endpoint ---------------------------------------------------------------
RESTART_SCRIPT = """
import os, signal, subprocess, sys, time, urllib.request
pidfile, port, uri, version, log = sys.argv[1:6]
try:
    os.killpg(int(open(pidfile).read()), signal.SIGTERM)
except (OSError, ValueError):
    pass
for _ in range(100):  # wait for the port to be released
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=0.2)
        time.sleep(0.1)
    except OSError:
        break
proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "mlflow"), "models", "serve",
                         "-m", f"models:/iris/{version}", "-h", "127.0.0.1", "-p", port,
                         "--env-manager", "local", "-w", "1"],
                        stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True,
                        env={**os.environ, "MLFLOW_TRACKING_URI": uri,
                             "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]})
open(pidfile, "w").write(str(proc.pid))
print(f"restarted iris v{version} as pid {proc.pid}")
"""


@pytest.mark.slow
def test_promote_redeploys_a_real_mlflow_models_serve(mlflow_registry, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    served = start_model_server(mlflow_registry.tracking_uri, "models:/iris/2", port, log)
    pidfile = tmp_path / "serve.pid"
    pidfile.write_text(str(served.process.pid))
    script = tmp_path / "restart.py"
    script.write_text(RESTART_SCRIPT)
    command = f"{sys.executable} {script} {pidfile} {port} {mlflow_registry.tracking_uri} {{version}} {log}"
    settings = make_settings(
        tmp_path,
        mlflow_registry.tracking_uri,
        [
            {
                "name": "iris-prod",
                "url": f"http://127.0.0.1:{port}",
                "model": "iris",
                "adapter": "mlflow",
                "deploy": {"command": command, "timeout": 30, "verify_timeout": 90},
            },
        ],
    )
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    messages: list[str] = []
    try:
        started = time.monotonic()
        result = promote(
            settings, store, registry, "iris", 3, actor="a", reason="real serve", on_progress=messages.append
        )
        elapsed = time.monotonic() - started
        assert result.ok, (result.message, log.read_text()[-2000:])
        [outcome] = result.deploys
        assert outcome.verify is not None and outcome.verify.served_version is None
        assert "restarted iris v3" in outcome.hook.output
        print(f"\npromote + redeploy + verify against mlflow models serve: {elapsed:.1f}s")
        (tmp_path.parent / "promote-timing.txt").write_text(f"{elapsed:.1f}\n")
    finally:
        import os
        import signal

        with contextlib.suppress(OSError, ValueError):
            os.killpg(int(pidfile.read_text()), signal.SIGTERM)
        stop_process_group(served.process)


def test_no_deploy_moves_the_alias_and_warns(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(mlflow_registry, tmp_path, {"command": "false"})
    result = promote(settings, store, registry, "iris", 3, actor="a", deploy=False)
    assert result.ok and result.deploys == [] and any("--no-deploy" in w for w in result.warnings)
    assert store.list_audit(action="deploy") == []
