"""Runbooks: `runbook` on `[[rules]]` (by endpoint glob) and `[[endpoints]]`, shown wherever an alert is:
`alerts show`, its pages, and the console's alert detail, where `o` opens it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlops_console.cli import main
from mlops_console.config import parse_settings
from mlops_console.core.alerts import alert_messages, fingerprint
from mlops_console.core.store import NewAlert, Store
from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen
from tests import sample
from tests.test_tui_app import settle

RULE_BOOK = "https://wiki.example/runbooks/iris-latency"
ENDPOINT_BOOK = "https://wiki.example/runbooks/iris-prod"
CONFIG = f"""
[[endpoints]]
name = "iris-prod"
url = "http://127.0.0.1:5001"
runbook = "{ENDPOINT_BOOK}"

[[endpoints]]
name = "fraud-api"
url = "http://127.0.0.1:5002"

[[rules]]
rule = "latency_p95"
endpoint = "iris-*"
runbook = "https://wiki.example/runbooks/old"

[[rules]]
rule = "latency_p95"
endpoint = "iris-*"
runbook = "{RULE_BOOK}"

[[rules]]
rule = "latency_p95"
endpoint = "*"
threshold = 0.5

[[notifications]]
url = "json://127.0.0.1:9/hook"
"""


def write_config(tmp_path: Path, body: str = CONFIG) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "c.db"}"\n' + body)
    return path


def new_alert(rule: str, endpoint: str) -> NewAlert:
    return NewAlert(
        fingerprint=fingerprint(rule, endpoint, None),
        rule=rule,
        endpoint=endpoint,
        severity="warning",
        summary=f"{endpoint} {rule}",
        started_at=sample.clock() - 60,
    )


def test_the_last_matching_rule_wins_then_the_endpoints_own(tmp_path: Path) -> None:
    from mlops_console.config import load_settings

    settings = load_settings(write_config(tmp_path))
    # A later table without a runbook (threshold only) does not take the earlier one's away.
    assert settings.runbook_for("latency_p95", "iris-prod") == RULE_BOOK
    assert settings.runbook_for("down", "iris-prod") == ENDPOINT_BOOK
    assert settings.runbook_for("latency_p95", "fraud-api") is None
    assert settings.runbook_for("down", "gone-from-config") is None


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('[[rules]]\nrule = "down"\nrunbook = "wiki/down"\n', "rules[0].runbook"),
        ('[[rules]]\nrule = "down"\nrunbook = "javascript:alert(1)"\n', "rules[0].runbook"),
        ('[[rules]]\nrule = "down"\nrunbook = "https://wiki/a b"\n', "rules[0].runbook"),
        (
            '[[endpoints]]\nname = "e"\nurl = "http://127.0.0.1:1"\nrunbook = "https://x/\\u001b]0;t"\n',
            "endpoints[0].runbook",
        ),
        ('[[endpoints]]\nname = "e"\nurl = "http://127.0.0.1:1"\nrunbook = 3\n', "endpoints[0].runbook"),
    ],
)
def test_a_wrong_runbook_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, key: str
) -> None:
    path = write_config(tmp_path, body)
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{key}:" in err and "Traceback" not in err and "\x1b" not in err


def test_alerts_show_gives_the_runbook_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    store = Store(tmp_path / "c.db")
    with_rule = store.open_alert(new_alert("latency_p95", "iris-prod"), [])
    without = store.open_alert(new_alert("latency_p95", "fraud-api"), [])
    assert main(["--config", str(config), "alerts", "show", str(with_rule)]) == 0
    assert f"  runbook {RULE_BOOK}\n" in capsys.readouterr().out
    assert main(["--config", str(config), "alerts", "show", str(with_rule), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runbook"] == RULE_BOOK
    assert main(["--config", str(config), "alerts", "show", str(without), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runbook"] is None
    assert main(["--config", str(config), "alerts", "show", str(without)]) == 0
    assert "runbook" not in capsys.readouterr().out


def test_pages_carry_the_runbook_until_the_resolve(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "endpoints": [{"name": "iris-prod", "url": "http://127.0.0.1:5001", "runbook": ENDPOINT_BOOK}],
            "notifications": [{"url": "json://127.0.0.1:9/hook"}],
        }
    )
    store = Store(tmp_path / "c.db")
    alert = new_alert("down", "iris-prod")
    alert_id = store.open_alert(alert, lambda i: alert_messages(settings, "firing", replace(alert, id=i)))
    (firing,) = store.query("SELECT kind, body FROM notifications WHERE alert_id=?", [alert_id])
    assert firing["kind"] == "firing" and f"\nRunbook: {ENDPOINT_BOOK}\n" in firing["body"]
    stored = replace(alert, id=alert_id)
    for kind in ("reminder", "flapping"):
        (message,) = alert_messages(settings, kind, stored)
        assert f"Runbook: {ENDPOINT_BOOK}" in message.body
    (resolved,) = alert_messages(settings, "resolved", stored)
    assert "Runbook" not in resolved.body
    (other,) = alert_messages(settings, "firing", replace(stored, endpoint="fraud-api"))
    assert "Runbook" not in other.body


def _app(tmp_path: Path, opened: list[str]) -> Any:

    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [{"name": "fraud-scorer", "url": "http://10.0.0.7:8080", "adapter": "generic"}],
            "rules": [{"rule": "latency_p95", "endpoint": "fraud-*", "runbook": RULE_BOOK}],
        }
    )
    store = Store(tmp_path / "console.db")
    app = sample.console_over(store, settings, sample.SampleRegistry())
    # The browser is the one part a test cannot run: record what would be opened.
    app.open_url = lambda url, new_tab=True: opened.append(url)
    return app


async def test_the_alert_detail_shows_the_runbook_and_o_opens_it(tmp_path: Path) -> None:
    opened: list[str] = []
    app = _app(tmp_path, opened)
    with_book = app.backend.store.open_alert(new_alert("latency_p95", "fraud-scorer"), [])
    without = app.backend.store.open_alert(new_alert("down", "fraud-scorer"), [])
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(AlertTimelineScreen(with_book))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertTimelineScreen)
        assert f"runbook: {RULE_BOOK}  (o opens it)" in screen.summary.render().plain  # type: ignore[union-attr]
        await pilot.press("o")
        await settle(pilot)
        assert opened == [RULE_BOOK]

        await pilot.press("escape")
        app.push_screen(AlertTimelineScreen(without))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AlertTimelineScreen)
        assert "runbook" not in screen.summary.render().plain  # type: ignore[union-attr]
        await pilot.press("o")
        await settle(pilot)
        assert opened == [RULE_BOOK]
