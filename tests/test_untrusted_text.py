"""Escape sequences from endpoints, the registry and other people's input reach no terminal raw.

A hostile string sets the terminal title, clears the screen, plants a hyperlink, reverses the text
that follows and forges a second log line. Every text output shows it escaped; JSON output keeps it
exactly.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import load_settings
from mlops_console.core.alerts import open_external_alert
from mlops_console.core.store import Store
from mlops_console.core.text import printable
from tests._loopback import FaultServer, wait_for

EVIL = (
    "\x1b]0;pwned\x07\x1b[2J\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
    "\u202eevil\x9b31m\x7f\nFORGED LINE"
)
EVIL_NAME = "\x1b]0;pwned\x07\x1b[2J\u202eevil\x9b31m\x7f\nFORGED LINE"  # MLflow refuses '/' and ':'
# What a terminal would act on: C0 controls except newline, ESC, DEL, C1, bidi overrides and isolates.
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def assert_inert(text: str) -> None:
    assert not RAW.search(text), repr(RAW.search(text))
    assert "\nFORGED LINE" not in text
    assert "\\x1b]0;pwned\\x07" in text  # escaped, still readable: not silently dropped


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert printable("a\x1b[31mb\x07c") == "a\\x1b[31mb\\x07c"
    assert printable("x\x9b2J\x7fy\x00") == "x\\x9b2J\\x7fy\\x00"
    assert printable("one\ntwo\r\tthree") == "one\\ntwo\\r\\tthree"
    assert printable("abc\u202edef\u2066g\u200f") == "abc\\u202edef\\u2066g\\u200f"
    assert printable("naïve 模型 ✓ [bold]x[/]") == "naïve 模型 ✓ [bold]x[/]"
    assert printable(None) == "" and printable(3) == "3"


def test_the_console_drops_bidi_overrides_too() -> None:
    from mlops_console.tui.text import clean

    assert clean("price\u202e01$\u2066x\u2069") == "price01$x"


@pytest.fixture
def servers() -> Iterator[tuple[FaultServer, FaultServer]]:
    up, failing = FaultServer().start(), FaultServer().start()
    up.version = EVIL
    failing.faults.mode = "error"
    failing.faults.body = EVIL.encode()
    yield up, failing
    up.stop()
    failing.stop()


def endpoints_config(tmp_path: Path, up: FaultServer, failing: FaultServer) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(
        f"""
[store]
path = "{tmp_path / "c.db"}"

[[endpoints]]
name = "up"
url = "{up.url}"
interval = 0.2
payload = {{ dataframe_split = {{ columns = ["a"], data = [[1.0]] }} }}

[[endpoints]]
name = "failing"
url = "{failing.url}"
interval = 0.2
"""
    )
    return path


def test_status_shows_hostile_versions_and_error_bodies_escaped(
    tmp_path: Path, servers: tuple[FaultServer, FaultServer], capsys: pytest.CaptureFixture[str]
) -> None:
    config = endpoints_config(tmp_path, *servers)
    assert main(["--config", str(config), "status"]) == 1
    table = capsys.readouterr().out
    assert_inert(table)
    assert "HTTP 500 from /ping" in table
    assert main(["--config", str(config), "status", "--json"]) == 1
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["up"]["served_version"] == EVIL
    assert "\x1b]0;pwned\x07" in rows["failing"]["last_error"]


def test_alerts_list_show_and_ack_show_hostile_text_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n')
    settings = load_settings(config)
    alert_id = open_external_alert(
        Store(settings.store.path),
        settings,
        rule="down",
        endpoint=EVIL,
        model=EVIL,
        version=EVIL,
        severity="critical",
        summary=f"HTTP 500 from /ping: {EVIL}",
    )
    run = lambda *a: main(["--config", str(config), "alerts", *a])  # noqa: E731
    assert run("ack", str(alert_id), "--by", EVIL, "--note", EVIL) == 0
    assert_inert(capsys.readouterr().out)
    for argv in (("list",), ("list", "--state", "all"), ("show", str(alert_id))):
        assert run(*argv) == 0
        out = capsys.readouterr().out
        assert_inert(out)
    assert run("show", str(alert_id), "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["endpoint"] == EVIL and shown["acked_by"] == EVIL and shown["version"] == EVIL
    assert [e["note"] for e in shown["events"] if e["kind"] == "acknowledged"] == [EVIL]


def test_audit_shows_hostile_actors_and_reasons_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n')
    store = Store(load_settings(config).store.path)
    store.add_audit(
        actor=EVIL, action="promote", result="refused", model=EVIL, alias="production", reason=EVIL,
        detail={"problems": [EVIL]},
    )  # fmt: skip
    assert main(["--config", str(config), "audit"]) == 0
    assert_inert(capsys.readouterr().out)
    assert main(["--config", str(config), "audit", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["actor"], row["model"], row["reason"]) == (EVIL, EVIL, EVIL)


def test_models_shows_hostile_registry_names_escaped(
    mlflow_registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(
        tracking_uri=mlflow_registry.tracking_uri, registry_uri=mlflow_registry.tracking_uri
    )
    client.create_registered_model(EVIL_NAME)
    client.create_model_version(EVIL_NAME, source=str(mlflow_registry.root / "unused-artifacts"))
    client.set_registered_model_alias(EVIL_NAME, "production", "1")
    config = tmp_path / "c.toml"
    config.write_text(
        f'[registry]\ntracking_uri = "{mlflow_registry.tracking_uri}"\n'
        f'[store]\npath = "{tmp_path / "c.db"}"\n'
    )
    assert main(["--config", str(config), "models"]) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    assert "iris" in out
    assert main(["--config", str(config), "models", "--json"]) == 0
    assert EVIL_NAME in [m["name"] for m in json.loads(capsys.readouterr().out)]


def test_watch_text_log_lines_are_escaped(tmp_path: Path, servers: tuple[FaultServer, FaultServer]) -> None:
    config = endpoints_config(tmp_path, *servers)
    log = tmp_path / "watch.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_console", "--config", str(config), "watch", "--log-format", "text"],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        wait_for(lambda: b"firing" in log.read_bytes(), timeout=60, what="the down alert in the log")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    text = log.read_text()
    assert "failing is down: HTTP 500 from /ping: " in text
    assert_inert(text)
    assert all(re.match(r"\d{4}-\d\d-\d\dT", line) for line in text.splitlines()), text


def test_watch_json_log_lines_keep_the_text_exactly(
    tmp_path: Path, servers: tuple[FaultServer, FaultServer]
) -> None:
    config = endpoints_config(tmp_path, *servers)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlops_console", "--config", str(config), "watch", "--log-format", "json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    try:
        assert proc.stderr is not None
        while time.monotonic() < deadline and not any(line.get("event") == "health" for line in lines):
            lines.append(json.loads(proc.stderr.readline()))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    [down] = [line for line in lines if line.get("event") == "health"]
    assert isinstance(down["message"], str) and "\x1b]0;pwned\x07" in down["message"]
