"""`status` and `notify test` against real loopback servers; the `generic` adapter's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops_console.cli import main
from tests._loopback import FaultServer, Sink


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n' + body)
    return path


def test_status_reports_each_endpoint_and_fails_when_one_is_down(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        f"""
[[endpoints]]
name = "model"
url = "{server.url}"
payload = {{ dataframe_split = {{ columns = ["a"], data = [[1.0]] }} }}
metrics_url = "{server.url}/metrics"

[[endpoints]]
name = "health-page"
url = "{server.url}"
adapter = "generic"
path = "/ping"

[[endpoints]]
name = "gone"
url = "http://127.0.0.1:9"
adapter = "generic"
""",
    )
    assert main(["--config", str(config), "status", "--json"]) == 1
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["model"]["health"] == "up" and rows["model"]["served_version"] == "1"
    assert rows["model"]["rps"] is not None
    assert rows["health-page"]["health"] == "up" and rows["health-page"]["rps"] is None
    assert rows["gone"]["health"] == "down" and "connection failed" in rows["gone"]["last_error"]
    assert main(["--config", str(config), "status"]) == 1
    table = capsys.readouterr().out
    assert "gone" in table and "unknown" in table


def test_generic_adapter_checks_status_and_body(
    tmp_path: Path, server: FaultServer, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path,
        f"""
[[endpoints]]
name = "wants-body"
url = "{server.url}"
adapter = "generic"
path = "/ping"
expect_body = "healthy"
""",
    )
    assert main(["--config", str(config), "status", "--json"]) == 1
    row = json.loads(capsys.readouterr().out)[0]
    assert row["health"] == "down" and "body lacks 'healthy'" in row["last_error"]


def test_notify_test_reports_each_channel_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = Sink().start()
    try:
        config = write_config(
            tmp_path,
            f"""
[[notifications]]
url = "{sink.url}?+X-Token=topsecret"

[[notifications]]
url = "json://127.0.0.1:9/nobody-home"
""",
        )
        assert main(["--config", str(config), "notify", "test"]) == 1
    finally:
        sink.stop()
    out = capsys.readouterr().out
    assert f"ok      json://127.0.0.1:{sink.port}/hook?+X-Token=****" in out
    assert "FAILED  json://127.0.0.1:9/nobody-home" in out
    assert "topsecret" not in out
    assert sink.received and sink.received[0]["title"] == "mlops-console test notification"
