"""Maintenance windows (`mlops-console silence --endpoint GLOB --for D`): alerts of matching endpoints
are recorded and shown but page nobody (no first page, reminder or escalation) while the window runs;
one still firing when the window ends pages once then."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import Settings
from mlops_console.core.alerts import escalate_unacknowledged, page_after_maintenance, remind_unacknowledged
from mlops_console.core.engine import ESCALATE_EVERY, Engine
from mlops_console.core.store import NewAlert, Store
from tests._loopback import FaultServer, Sink, async_wait_for
from tests.test_engine_faults import PAYLOAD


def write_config(tmp_path: Path, server_url: str, first: Sink, second: Sink) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "console.db"}"\n\n'
        f'[[endpoints]]\nname = "iris-1"\nurl = "{server_url}"\ninterval = 0.2\ntimeout = 0.5\n'
        f"payload = {json.dumps(json.dumps(PAYLOAD))}\n\n"
        f'[[notifications]]\nurl = "{first.url}"\n\n'
        f'[[notifications]]\nurl = "{second.url}"\nafter = "2s"\n'
    )
    return path


def settings_of(path: Path) -> Settings:
    from mlops_console.config import load_settings

    return load_settings(path)


def cli(config: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--config", str(config), *argv])
    return code, capsys.readouterr().out


def count(sink: Sink, prefix: str) -> int:
    return sum(t.startswith(prefix) for t in sink.titles())


async def test_an_outage_inside_a_window_is_recorded_but_pages_once_the_window_is_ended(
    tmp_path: Path, server: FaultServer, sinks: tuple[Sink, Sink], capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = sinks
    config = write_config(tmp_path, server.url, first, second)
    settings = settings_of(config)
    Store(settings.store.path)  # the watcher creates it; the command needs it to exist
    code, out = cli(
        config, capsys, "silence", "--endpoint", "iris-*", "--for", "2h", "--reason", "upgrade", "--json"
    )
    assert code == 0
    window = json.loads(out)["window"]
    assert window["endpoints"] == "iris-*" and window["reason"] == "upgrade" and window["running"] is True

    server.faults.mode = "error"
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await async_wait_for(lambda: store.list_alerts(), what="the alert is recorded")
        [alert] = store.list_alerts()
        assert alert.state == "firing"
        # Past the escalation's `after` and a few housekeeping rounds: still nobody paged.
        deadline = alert.started_at + 2.0 + 2 * ESCALATE_EVERY + 1.0
        await async_wait_for(lambda: time.time() > deadline, timeout=20, what="the escalation deadline")
        assert first.titles() == [] and second.titles() == []
        assert "maintenance" in [e.kind for e in store.events(alert.id)]
        code, out = await asyncio.to_thread(cli, config, capsys, "alerts", "list")
        assert f"(maintenance #{window['id']})" in out and "maintenance #1 iris-* until" in out

        code, out = await asyncio.to_thread(
            cli, config, capsys, "silence", "--end", str(window["id"]), "--json"
        )
        assert code == 0 and json.loads(out)["window"]["running"] is False
        await async_wait_for(lambda: count(first, "[FIRING] iris-1") == 1, what="the page after the window")
        assert "maintenance window over it has ended" in first.received[0]["message"]
        # The escalation clock starts with that page: the second line hears only if nobody acks now.
        await async_wait_for(lambda: count(second, "[ESCALATED] iris-1") == 1, timeout=20, what="escalation")
        server.faults.mode = "ok"
        await async_wait_for(lambda: count(first, "[RESOLVED] iris-1") == 1, what="the resolve")
    finally:
        stop.set()
        await task
    assert first.titles() == ["[FIRING] iris-1: endpoint down", "[RESOLVED] iris-1: endpoint down"]
    events = [e for e in store.events(alert.id) if e.kind == "escalated"]
    page = [e for e in store.events(alert.id) if e.kind == "maintenance_over"]
    assert events[0].at >= page[0].at + 2.0, "escalation counted from the page, not from the firing"
    audit = [(r.action, r.actor, r.endpoint) for r in store.list_audit()]
    assert ("maintenance", window["created_by"], "iris-*") in audit and (
        "maintenance_end",
        window["created_by"],
        "iris-*",
    ) in audit


# -- the store's side, without a watcher ---------------------------------------------------------------
@pytest.fixture
def stored(tmp_path: Path, sinks: tuple[Sink, Sink]) -> tuple[Settings, Store]:
    config = write_config(tmp_path, "http://127.0.0.1:9", *sinks)
    settings = settings_of(config)
    return settings, Store(settings.store.path)


def fire(store: Store, endpoint: str, age: float = 60.0, events: tuple[str, ...] = ()) -> int:
    alert = NewAlert(f"fp-{endpoint}", "down", endpoint, "critical", f"{endpoint} down", time.time() - age)
    return store.open_alert(alert, [], events=list(events))


@pytest.mark.parametrize(
    ("pattern", "covered"),
    [
        ("iris-*", {"iris-1", "iris-prod"}),
        ("iris-?", {"iris-1"}),
        ("iris-[!1]*", {"iris-prod"}),
        ("*-1", {"iris-1", "xiris-1"}),
        ("IRIS-*", set()),
    ],
)
def test_a_window_covers_exactly_the_endpoints_its_glob_matches(
    stored: tuple[Settings, Store], pattern: str, covered: set[str]
) -> None:
    _, store = stored
    store.start_maintenance(pattern, 3600, "alice")
    names = {"iris-1", "iris-prod", "xiris-1", "iris"}
    assert {n for n in names if store.in_maintenance(n)} == covered


def test_no_reminder_or_escalation_under_a_window_and_both_resume_after(
    stored: tuple[Settings, Store],
) -> None:
    settings, store = stored
    alert_id = fire(store, "iris-1")
    window = store.start_maintenance("iris-*", 3600, "alice", "upgrade")
    store._conn().execute("UPDATE alerts SET last_notified_at = 1.0")
    assert remind_unacknowledged(store, settings) == 0
    assert escalate_unacknowledged(store, settings) == 0
    assert page_after_maintenance(store, settings) == 0, "it was paged before the window: nothing withheld"
    store.end_maintenance(window.id, "alice")
    assert remind_unacknowledged(store, settings) == 1
    assert escalate_unacknowledged(store, settings) == 1
    assert [n.kind for n in store.notifications_for(alert_id)] == ["reminder", "escalation"]


def test_a_window_opened_between_due_and_page_stops_reminder_and_escalation(
    stored: tuple[Settings, Store],
) -> None:
    settings, store = stored
    alert_id = fire(store, "iris-1")
    store._conn().execute("UPDATE alerts SET last_notified_at = 1.0")
    [due] = store.due_reminders(settings.notify.renotify_after)
    second = settings.notifications[1]
    from mlops_console.core.alerts.escalation import escalation_message
    from mlops_console.core.notifier import channel_id

    [due_escalation] = store.due_escalations(channel_id(second.template), second.after)
    store.start_maintenance("iris-1", 3600, "alice")
    assert store.remind(due.id, []) is False
    message = escalation_message(settings, second, due_escalation)
    assert store.escalate(alert_id, message.channel, second.after, [message]) is False
    assert store.notifications_for(alert_id) == []


@pytest.mark.parametrize("decision", ["acknowledge", "resolve", "still covered"])
def test_the_withheld_page_goes_once_and_only_to_an_alert_still_firing_unacknowledged(
    stored: tuple[Settings, Store], decision: str
) -> None:
    settings, store = stored
    window = store.start_maintenance("iris-*", 3600, "alice")
    alert_id = fire(store, "iris-1", events=("maintenance",))
    if decision == "acknowledge":
        store.acknowledge(alert_id, "bob")
    elif decision == "resolve":
        store.resolve_alert(alert_id, [])
    else:
        store.start_maintenance("iris-1", 3600, "carol")
    store.end_maintenance(window.id, "alice")
    assert page_after_maintenance(store, settings) == 0
    assert store.notifications_for(alert_id) == []


def test_the_withheld_page_goes_once(stored: tuple[Settings, Store]) -> None:
    settings, store = stored
    window = store.start_maintenance("iris-*", 3600, "alice")
    alert_id = fire(store, "iris-1", events=("maintenance",))
    assert page_after_maintenance(store, settings) == 0, "not while the window runs"
    store.end_maintenance(window.id, "alice")
    assert page_after_maintenance(store, settings) == 1
    assert page_after_maintenance(store, settings) == 0
    assert [(n.kind, n.title) for n in store.notifications_for(alert_id)] == [
        ("firing", "[FIRING] iris-1: endpoint down")
    ]


def test_opening_a_window_stops_pages_already_queued_for_matching_alerts(
    stored: tuple[Settings, Store],
) -> None:
    settings, store = stored
    from mlops_console.core.alerts import alert_messages

    for endpoint in ("iris-1", "xiris-1"):
        alert = NewAlert(f"fp-{endpoint}", "down", endpoint, "critical", "down", time.time())
        store.open_alert(alert, lambda i, a=alert: alert_messages(settings, "firing", a))
    store.start_maintenance("iris-*", 3600, "alice")
    statuses = {
        row["endpoint"]: row["status"]
        for row in store.query(
            "SELECT a.endpoint, n.status FROM notifications n JOIN alerts a ON a.id=n.alert_id"
        )
    }
    assert statuses == {"iris-1": "silenced", "xiris-1": "pending"}
    # The dropped first page is owed: it goes once the window ends, if the alert still fires.
    [window] = store.maintenance_windows(time.time())
    assert page_after_maintenance(store, settings) == 0
    store.end_maintenance(window.id, "alice")
    assert page_after_maintenance(store, settings) == 1
    [owed] = store.query(
        "SELECT a.endpoint, n.title FROM notifications n JOIN alerts a ON a.id=n.alert_id "
        "WHERE n.status='pending' AND a.endpoint='iris-1'"
    )
    assert owed["title"] == "[FIRING] iris-1: endpoint down"


def test_cli_errors_and_hostile_reasons(
    stored: tuple[Settings, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    hostile = "\x1b[31mred[/] [bold]x\x07"
    code, out = cli(config, capsys, "silence", "--endpoint", "iris-*", "--for", "1h", "--reason", hostile)
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    code, out = cli(config, capsys, "silence", "--list")
    assert code == 0 and "iris-*" in out and "\x1b" not in out
    code, out = cli(config, capsys, "silence", "--end", "99", "--json")
    assert code == 1 and json.loads(out) == {
        "ok": False,
        "error": "no maintenance window with id 99",
        "exit_code": 1,
    }
    assert cli(config, capsys, "silence", "--end", "1")[0] == 0
    code, out = cli(config, capsys, "silence", "--end", "1", "--json")
    assert code == 1 and "already ended" in json.loads(out)["error"]
    for argv in (
        ["--endpoint", "iris-*"],
        ["--endpoint", "iris-*", "--for", "31d"],
        ["--end", "1", "--for", "1h"],
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["--config", str(config), "silence", *argv])
        assert exit_.value.code == 2
    capsys.readouterr()
    code, out = cli(config, capsys, "silence", "--list", "--all", "--json")
    [window] = json.loads(out)
    assert window["reason"] == hostile and window["ended_by"] and window["running"] is False


def test_the_shift_report_lists_windows_still_running(
    stored: tuple[Settings, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, store = stored
    config = tmp_path / "config.toml"
    hostile = "db \x1b[2Jmove | *now*"
    running = store.start_maintenance("iris-*", 7200, "alice", hostile)
    ended = store.start_maintenance("bert-*", 7200, "bob", "done early")
    store.end_maintenance(ended.id, "bob")
    code, out = cli(config, capsys, "report", "--since", "1h", "--format", "json")
    assert code == 0
    [window] = json.loads(out)["maintenance"]
    assert window == {
        "window": running.id,
        "endpoints": "iris-*",
        "until": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(running.ends_at)),
        "by": "alice",
        "reason": hostile,
    }
    code, out = cli(config, capsys, "report", "--since", "1h")
    section = out.split("Maintenance windows still running:")[1]
    assert "iris-*" in section and "bert-*" not in section
    assert "\x1b" not in out and "db \\x1b[2Jmove | *now*" in section
    code, out = cli(config, capsys, "report", "--since", "1h", "--format", "md")
    assert "\x1b" not in out and "move \\| \\*now\\*" in out
