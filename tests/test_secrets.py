"""Secrets stay out of what is shown, logged and stored; `${VAR}` is resolved only where it is used.

Real apprise deliveries to loopback sinks, a real `watch` process, real deploy hooks (a shell and an
HTTP server) against a real sqlite MLflow registry.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mlops_console.cli import main
from mlops_console.config import ConfigError, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.engine import Engine
from mlops_console.core.registry import RegistryClient
from mlops_console.core.secrets import redact_url
from mlops_console.core.store import Store
from tests._changes import promote, rollback
from tests._loopback import FaultServer, Sink, async_wait_for, wait_for

TOKEN = "Tk9sEcReT4711zz"
LITERAL = "Lit3ralT0kenXYZ"


def leaks(text: str | bytes, *secrets: str) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in secrets if s.encode() in data]


# -- (a) apprise URLs ------------------------------------------------------------------------------------
REDACTED = {
    f"json://127.0.0.1:8999/hook/{LITERAL}": "json://127.0.0.1:8999/hook/****",
    f"jsons://hooks.example.com/{LITERAL}/notify": "jsons://hooks.example.com/****/notify",
    f"form://pager:8080/api/v2/{LITERAL}": "form://pager:8080/api/****/****",
    f"xml://user:{LITERAL}@10.0.0.5/in": "xml://****@10.0.0.5/in",
    f"json://127.0.0.1/hook?+X-Token={LITERAL}&-key=${{PAGER_KEY}}": "json://127.0.0.1/hook?+X-Token=****&-key=${PAGER_KEY}",
    f"slack://T1JJ3T3L2/A1BRTD4JD/{LITERAL}/#ops": "slack://****/****/****/#ops",
    f"https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/{LITERAL}": (
        "https://hooks.slack.com/services/****/****/****"
    ),
    f"discord://4174216298/{LITERAL}": "discord://****/****",
    "ntfy://mysecrettopic": "ntfy://****",
    "ntfys://ntfy.sh/secrettopic?token=tk_abcdef": "ntfys://ntfy.sh/****?token=****",
    f"pagerduty://{LITERAL}@apikey4711/source": "pagerduty://****@****/source",
    "json://127.0.0.1:8999/hook/${PAGER_TOKEN}": "json://127.0.0.1:8999/hook/${PAGER_TOKEN}",
    "no scheme here": "<invalid url>",
}


@pytest.mark.parametrize("url", list(REDACTED))
def test_redacted_urls_keep_hosts_and_words_and_hide_tokens(url: str) -> None:
    shown = redact_url(url)
    assert shown == REDACTED[url]
    assert not leaks(shown, LITERAL, "mysecrettopic", "secrettopic", "tk_abcdef", "T1JJ3T3L2", "4174216298")


def test_notify_test_hides_path_tokens_and_topics_even_in_errors(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = Sink(mode="fail").start()
    monkeypatch.setenv("PAGER_TOKEN", TOKEN)
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[store]
path = "{tmp_path / "c.db"}"
[[notifications]]
url = "json://127.0.0.1:{sink.port}/hook/${{PAGER_TOKEN}}"
[[notifications]]
url = "json://127.0.0.1:{sink.port}/hooks/{LITERAL}"
[[notifications]]
url = "ntfy://127.0.0.1:{failing.port}/secrettopic"
"""
    )
    try:
        assert main(["--config", str(config), "notify", "test"]) == 1
    finally:
        failing.stop()
    out = capsys.readouterr().out
    assert sorted(sink.paths) == [f"/hook/{TOKEN}", f"/hooks/{LITERAL}"]  # delivered with the real URLs
    assert f"ok      json://127.0.0.1:{sink.port}/hook/${{PAGER_TOKEN}}" in out
    assert f"ok      json://127.0.0.1:{sink.port}/hooks/****" in out
    assert f"FAILED  ntfy://127.0.0.1:{failing.port}/****: " in out and "error=500" in out
    assert leaks(out, TOKEN, LITERAL, "secrettopic") == []


def test_watch_json_logs_and_the_store_hold_no_token(
    sink: Sink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FaultServer().start()
    server.faults.mode = "error"
    failing = Sink(mode="fail").start()  # answers 500: apprise's warning then names the topic
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[store]
path = "{tmp_path / "c.db"}"
[[endpoints]]
name = "ep"
url = "{server.url}"
interval = 0.2
[[notifications]]
url = "json://127.0.0.1:{sink.port}/hook/${{PAGER_TOKEN}}"
[[notifications]]
url = "ntfy://127.0.0.1:{failing.port}/{LITERAL.lower()}"
"""
    )
    log = tmp_path / "watch.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_console", "--config", str(config), "watch", "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**os.environ, "PAGER_TOKEN": TOKEN},
        )
    try:
        wait_for(lambda: any("FIRING" in t for t in sink.titles()), timeout=60, what="the page")
        wait_for(lambda: b"to ntfy://" in log.read_bytes(), timeout=30, what="the failed ntfy attempt")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        server.stop()
        failing.stop()
    assert sink.paths[0] == f"/hook/{TOKEN}" and failing.attempts >= 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    messages = [line["message"] for line in lines if line["logger"] == "mlops_console.core.notifier"]
    assert any(f"json://127.0.0.1:{sink.port}/hook/${{PAGER_TOKEN}}: delivered" in m for m in messages)
    assert any(f"ntfy://127.0.0.1:{failing.port}/****: " in m and "error=500" in m for m in messages), (
        messages
    )
    assert leaks(log.read_bytes(), TOKEN, LITERAL.lower()) == []
    store = Store(tmp_path / "c.db")
    targets = {row["target"] for row in store.query("SELECT target FROM notifications")}
    assert targets == {
        f"json://127.0.0.1:{sink.port}/hook/${{PAGER_TOKEN}}",
        f"ntfy://127.0.0.1:{failing.port}/****",
    }
    store.close()
    assert leaks(b"".join(p.read_bytes() for p in tmp_path.glob("c.db*")), TOKEN, LITERAL.lower()) == []


# -- (b) deploy hooks ------------------------------------------------------------------------------------
async def healthy(_endpoint: Any) -> ProbeResult:
    return ProbeResult(ok=True)


def test_audit_keeps_the_hook_template_and_hides_expanded_secrets(
    mlflow_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    received: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(f"deployed with {TOKEN}".encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("DEPLOY_TOKEN", TOKEN)
    webhook = f"http://127.0.0.1:{server.server_address[1]}/deploy/${{DEPLOY_TOKEN}}/{{model}}"
    command = 'echo deploying {model} with ${DEPLOY_TOKEN}; echo "auth $DEPLOY_TOKEN refused" >&2; exit 3'
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[registry]
tracking_uri = "{mlflow_registry.tracking_uri}"
[store]
path = "{tmp_path / "c.db"}"
[[endpoints]]
name = "by-command"
url = "http://127.0.0.1:9"
model = "iris"
deploy = {{ command = {json.dumps(command)}, verify_timeout = 1 }}
[[endpoints]]
name = "by-webhook"
url = "http://127.0.0.1:9"
model = "iris"
deploy = {{ webhook = "{webhook}", verify_timeout = 1 }}
"""
    )
    try:
        code = main(["--config", str(config), "promote", "iris", "3", "--yes"])
    finally:
        server.shutdown()
    cli = capsys.readouterr()
    assert code == 1  # the command hook fails (exit 3); the webhook runs, nothing serves on port 9
    assert received == [f"/deploy/{TOKEN}/iris"]  # the webhook was called with the real secret
    assert "hook exited 3: auth ${DEPLOY_TOKEN} refused" in cli.err
    assert main(["--config", str(config), "audit", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    hooks = {row["endpoint"]: row["detail"]["hook"] for row in rows if row["action"] == "deploy"}
    assert hooks["by-command"]["target"] == "echo deploying iris with ${DEPLOY_TOKEN}; " + (
        'echo "auth $DEPLOY_TOKEN refused" >&2; exit 3'
    )
    assert "deploying iris with ${DEPLOY_TOKEN}" in hooks["by-command"]["output"]
    assert hooks["by-webhook"]["target"].endswith("/deploy/${DEPLOY_TOKEN}/iris")
    assert hooks["by-webhook"]["output"] == "deployed with ${DEPLOY_TOKEN}"
    assert main(["--config", str(config), "audit"]) == 0
    text = capsys.readouterr().out
    assert "auth ${DEPLOY_TOKEN} refused" in text
    assert leaks(json.dumps(rows) + text + cli.out + cli.err, TOKEN) == []
    store = Store(tmp_path / "c.db")
    alerts = {alert.endpoint: alert for alert in store.list_alerts()}
    assert "auth ${DEPLOY_TOKEN} refused" in alerts["by-command"].summary
    store.close()
    assert leaks(b"".join(p.read_bytes() for p in tmp_path.glob("c.db*")), TOKEN) == []


def test_a_secret_at_the_cut_of_a_long_output_is_not_half_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlops_console.config import DeploySettings
    from mlops_console.core.deploy import OUTPUT_TAIL_CHARS, run_hook

    monkeypatch.setenv("DEPLOY_TOKEN", TOKEN)
    after = OUTPUT_TAIL_CHARS - 9  # the kept tail starts 8 characters before the token ends
    command = f"{sys.executable} -c \"print('x' * 5000 + '${{DEPLOY_TOKEN}}' + 'y' * {after}); exit(3)\""
    result = asyncio.run(run_hook(DeploySettings(command=command), {"model": "iris"}))
    assert result.exit_code == 3 and result.output.endswith("y" * after + "\n")
    assert TOKEN[-8:] not in result.output and TOKEN[-8:] not in (result.error or "")
    assert result.target == command


# -- (c) config errors -----------------------------------------------------------------------------------
def test_config_errors_do_not_echo_secret_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOK_URL", f"ftp://deploy:{TOKEN}@deploy.example/hook")
    monkeypatch.setenv("EP_URL", f"tcp://admin:{TOKEN}@10.0.0.1")
    monkeypatch.setenv("EP_INTERVAL", f"x{TOKEN}")
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[[endpoints]]
name = "a"
url = "${{EP_URL}}"
[[endpoints]]
name = "b"
url = "http://127.0.0.1:9"
interval = "${{EP_INTERVAL}}"
model = "m"
deploy = {{ webhook = "${{HOOK_URL}}" }}
[[endpoints]]
name = "c"
url = "http://127.0.0.1:9"
model = "m"
deploy = {{ webhook = "ftp://deploy:{LITERAL}@deploy.example/hook" }}
[[endpoints]]
name = "d"
url = "http://:{LITERAL}@/x"
"""
    )
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{config}: endpoints[0].url: expected an http:// or https:// URL with a host, got scheme 'tcp'"
        in err
    )
    assert f"{config}: endpoints[1].interval: expected a duration" in err and "${EP_INTERVAL}" in err
    assert f"{config}: endpoints[1].deploy.webhook: expected an http:// or https:// URL" in err
    assert f"{config}: endpoints[2].deploy.webhook: expected an http:// or https:// URL" in err
    assert f"{config}: endpoints[3].url: expected an http:// or https:// URL with a host, got no host" in err
    assert leaks(err, TOKEN, LITERAL) == []


# -- (d) the console's log file --------------------------------------------------------------------------
def test_console_log_is_created_private_and_an_old_one_is_tightened(tmp_path: Path) -> None:
    from mlops_console import locations
    from mlops_console.logs import PrivateFileHandler
    from mlops_console.tui.app import _log_to_file

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("apprise").propagate)
    old_umask = os.umask(0o022)
    try:
        _log_to_file()  # what `mlops-console` (the console) does before its first frame
        logging.getLogger("mlops_console.test").warning("alert #1 acknowledged by alice")
        path = locations.log_path()
        assert "acknowledged by alice" in path.read_text()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

        rotating = tmp_path / "rotating.log"
        rotating.write_text("from an older version\n")
        rotating.chmod(0o644)
        handler = PrivateFileHandler(rotating, maxBytes=200, backupCount=2, encoding="utf-8")
        for n in range(10):
            handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "line %d " + "x" * 50, (n,), None))
        handler.close()
        files = sorted(tmp_path.glob("rotating.log*"))
        assert len(files) == 3
        assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    finally:
        os.umask(old_umask)
        for handler in root.handlers:
            if handler not in saved[0]:
                handler.close()
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("apprise").propagate = saved[2]


# -- (e) `${VAR}` resolved where it is used --------------------------------------------------------------
def lazy_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[store]
path = "{tmp_path / "c.db"}"
[[endpoints]]
name = "ep"
url = "http://127.0.0.1:9"
adapter = "generic"
model = "iris"
deploy = {{ command = "deploy --token ${{DEPLOY_TOKEN}} {{model}}" }}
[[notifications]]
url = "json://127.0.0.1:9/hook/${{PAGER_TOKEN}}"
{extra}"""
    )
    return config


def test_commands_that_neither_page_nor_deploy_run_without_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PAGER_TOKEN", raising=False)
    monkeypatch.delenv("DEPLOY_TOKEN", raising=False)
    config = lazy_config(tmp_path)
    from mlops_console.config import load_settings
    from mlops_console.core.alerts import open_external_alert

    settings = load_settings(config, require_env=False)
    alert_id = open_external_alert(
        Store(settings.store.path), settings, rule="down", endpoint="ep", model=None, version=None,
        severity="critical", summary="ep failed 2 consecutive probes",
    )  # fmt: skip
    run = lambda *a: main(["--config", str(config), *a])  # noqa: E731
    assert run("alerts", "list") == 0
    assert run("alerts", "show", str(alert_id)) == 0
    assert run("alerts", "ack", str(alert_id), "--by", "alice") == 0
    assert run("audit") == 0
    assert run("status") == 1  # runs (the endpoint is down), rather than refusing the config
    captured = capsys.readouterr()
    assert "environment variable" not in captured.err
    assert "ep failed 2 consecutive probes" in captured.out
    [row] = Store(settings.store.path).notifications_for(alert_id)
    assert row.target == "json://127.0.0.1:9/hook/${PAGER_TOKEN}"


def test_models_runs_without_the_paging_secrets(
    mlflow_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PAGER_TOKEN", raising=False)
    config = lazy_config(tmp_path, f'[registry]\ntracking_uri = "{mlflow_registry.tracking_uri}"\n')
    assert main(["--config", str(config), "models"]) == 0
    assert "iris" in capsys.readouterr().out


def test_whatever_pages_or_deploys_fails_naming_the_key_and_the_variable(
    mlflow_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PAGER_TOKEN", raising=False)
    monkeypatch.delenv("DEPLOY_TOKEN", raising=False)
    config = lazy_config(tmp_path, f'[registry]\ntracking_uri = "{mlflow_registry.tracking_uri}"\n')
    paging = f"{config}: notifications[0].url: environment variable ${{PAGER_TOKEN}} is not set"
    deploying = f"{config}: endpoints[0].deploy.command: environment variable ${{DEPLOY_TOKEN}} is not set"
    for argv in (["watch"], ["notify", "test"]):
        assert main(["--config", str(config), *argv]) == 2
        assert paging in capsys.readouterr().err
    assert main(["config", "check", str(config)]) == 2
    err = capsys.readouterr().err
    assert paging in err and deploying in err

    registry = RegistryClient(
        parse_settings({"registry": {"tracking_uri": mlflow_registry.tracking_uri}}).registry
    )
    assert main(["--config", str(config), "promote", "iris", "3", "--yes"]) == 2
    assert deploying in capsys.readouterr().err
    assert registry.alias_version("iris", "production") == "2"  # nothing moved
    assert main(["--config", str(config), "promote", "iris", "3", "--yes", "--no-deploy"]) == 0
    assert registry.alias_version("iris", "production") == "3"


def test_promote_from_the_console_is_refused_before_the_alias_moves(
    mlflow_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEPLOY_TOKEN", raising=False)
    from mlops_console.config import load_settings

    config = lazy_config(tmp_path, f'[registry]\ntracking_uri = "{mlflow_registry.tracking_uri}"\n')
    settings = load_settings(config, require_env=False)
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    for change in (
        lambda: promote(settings, store, registry, "iris", 3, actor="a", probe=healthy),
        lambda: rollback(settings, store, registry, "iris", actor="a", probe=healthy),
    ):
        result = change()
        assert result.refused and not result.changed
        if "no previous version" not in result.message:
            assert (
                "endpoints[0].deploy.command: environment variable ${DEPLOY_TOKEN} is not set"
                in result.message
            )
    assert registry.alias_version("iris", "production") == "2"
    with pytest.raises(ConfigError):
        load_settings(config)  # the strict form (`config check`) still reports it


async def test_a_console_without_the_paging_secrets_follows_and_never_takes_the_lease(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = FaultServer().start()
    monkeypatch.delenv("PAGER_TOKEN", raising=False)
    data = {
        "store": {"path": str(tmp_path / "c.db")},
        "endpoints": [
            {"name": "ep", "url": server.url, "interval": 0.2, "adapter": "generic", "path": "/ping"}
        ],
        "notifications": [{"url": f"json://127.0.0.1:{sink.port}/hook/${{PAGER_TOKEN}}"}],
    }
    console = Engine(parse_settings(data, require_env=False), Store(tmp_path / "c.db"))
    stop = asyncio.Event()
    task = asyncio.create_task(console.run(stop))
    try:
        await async_wait_for(lambda: console.follow_owner, what="the console following")
        assert not console.leader and console.store.lease_holder() is None
        assert "nobody (cannot page without ${PAGER_TOKEN})" in (console.snapshot().owner or "")
        # A watcher that has the secret takes the lease, probes and pages; the console shows its data.
        monkeypatch.setenv("PAGER_TOKEN", TOKEN)
        watcher = Engine(parse_settings(data), Store(tmp_path / "c.db"))
        watcher_stop = asyncio.Event()
        watcher_task = asyncio.create_task(watcher.run(watcher_stop))
        try:
            await async_wait_for(lambda: watcher.leader, what="the watcher leading")
            server.faults.mode = "error"
            await async_wait_for(lambda: any("FIRING" in t for t in sink.titles()), what="the page")
            await async_wait_for(
                lambda: (console.snapshot().owner or "").startswith("pid "),
                what="console follows the watcher",
            )
            assert sink.paths[0] == f"/hook/{TOKEN}"
        finally:
            watcher_stop.set()
            await watcher_task
    finally:
        stop.set()
        await task
        server.stop()
    assert not console.leader
