"""The alert book's sibling paths and exact values, on a real SQLite store.

Beside the first page: reminders honour acks and silences, resolves honour silences, a silence stops
pages already queued. Beside one endpoint: the fingerprint keeps two endpoints' outages apart. Beside
a successful write: an alert and its outbox rows are one transaction, so a failure between them
leaves neither. And the `down` alert carries its failure count, exactly.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.alerts import AlertBook, remind_unacknowledged
from mlops_console.core.alerts.book import fingerprint
from mlops_console.core.conditions import Condition, Reading, evaluate
from mlops_console.core.series import WindowStats
from mlops_console.core.store import NewAlert, OutboxMessage, Store, StoreError


class Clock:
    """The book's clock, starting at wall time: the store's reminders and silences use wall time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def make_settings(tmp_path: Path, **notify: object) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "notifications": [{"url": "json://127.0.0.1:9/hook"}],
            "notify": notify,
        }
    )


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path)
    store = Store(settings.store.path)
    clock = Clock()
    return settings, store, clock, AlertBook(settings, clock=clock)


def run(book: AlertBook, store: Store, condition: Condition) -> None:
    for write in book.evaluate(condition):
        write(store)


def down(endpoint: str, active: bool | None) -> Condition:
    return Condition(
        "down", endpoint, active, "critical", 0.0, 3, 2, f"{endpoint} failed 3 probes", interval=1.0
    )


def titles(store: Store) -> list[str]:
    return [r["title"] for r in store.query("SELECT title FROM notifications ORDER BY id")]


def make_overdue(store: Store) -> None:
    """As if the last page went out two hours ago (the store's reminders compare with wall time)."""
    store._conn().execute("UPDATE alerts SET last_notified_at = ?", [time.time() - 7200])


# -- reminders: acks and silences are honoured there too ------------------------------------------------
def test_reminder_pages_an_unacknowledged_alert_once_per_interval(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down("ep", True))
    assert remind_unacknowledged(store, settings) == 0, "just paged: not due yet"
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 1
    assert titles(store) == ["[FIRING] ep: endpoint down", "[STILL FIRING] ep: endpoint down"]
    assert remind_unacknowledged(store, settings) == 0, "a reminder restarts the interval"
    [alert] = store.list_alerts()
    assert [e.kind for e in store.events(alert.id)] == ["fired", "reminder"]


def test_silenced_alert_gets_no_reminder(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down("ep", True))
    [alert] = store.list_alerts()
    store.silence(alert.id, 3600, by="bob")
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 0
    assert titles(store) == ["[FIRING] ep: endpoint down"]


def test_acknowledged_alert_gets_no_reminder_but_its_resolve_still_pages(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down("ep", True))
    [alert] = store.list_alerts()
    store.acknowledge(alert.id, "alice", "on it")
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 0
    run(book, store, down("ep", False))
    assert titles(store) == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]


def test_resolved_and_flapping_alerts_get_no_reminder(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down("a", True))
    run(book, store, down("a", False))
    run(book, store, down("b", True))
    store._conn().execute("UPDATE alerts SET flapping=1 WHERE endpoint='b'")
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 0


def test_renotify_after_zero_disables_reminders(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, renotify_after=0)
    store = Store(settings.store.path)
    book = AlertBook(settings, clock=Clock())
    run(book, store, down("ep", True))
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 0


def test_a_silence_expired_long_ago_does_not_stop_reminders(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down("ep", True))
    store._conn().execute("UPDATE alerts SET silenced_until = 1.0")
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 1


def test_a_recurrence_inside_a_silence_gets_no_reminder(world) -> None:  # type: ignore[no-untyped-def]
    """A silence covers the fingerprint: the incident that comes back during it is quiet, reminders too."""
    settings, store, clock, book = world
    run(book, store, down("ep", True))
    [first] = store.list_alerts()
    store.silence(first.id, 3600, by="bob")
    run(book, store, down("ep", False))
    clock.now += 600
    run(book, store, down("ep", True))
    assert [a.state for a in store.list_alerts()] == ["firing", "resolved"]
    make_overdue(store)
    assert remind_unacknowledged(store, settings) == 0
    assert titles(store) == ["[FIRING] ep: endpoint down"]


@pytest.mark.parametrize("decision", ["silence", "acknowledge", "resolve"])
def test_a_decision_landing_between_due_and_remind_stops_the_reminder(world, decision: str) -> None:  # type: ignore[no-untyped-def]
    """The reminder re-checks inside its own transaction: a silence, an ack or a resolve that lands after
    the alert was found due (another process, the console) wins, and nothing pages."""
    settings, store, _, book = world
    run(book, store, down("ep", True))
    make_overdue(store)
    [due] = store.due_reminders(settings.notify.renotify_after)
    if decision == "silence":
        store.silence(due.id, 3600, by="bob")
    elif decision == "acknowledge":
        store.acknowledge(due.id, "alice")
    else:
        store.resolve_alert(due.id, [])
    assert store.remind(due.id, [message("reminder")]) is False
    assert titles(store) == ["[FIRING] ep: endpoint down"]
    assert "reminder" not in [e.kind for e in store.events(due.id)]


def test_remind_pages_an_alert_still_due(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down("ep", True))
    make_overdue(store)
    [due] = store.due_reminders(settings.notify.renotify_after)
    assert store.remind(due.id, [message("reminder")]) is True
    assert titles(store) == ["[FIRING] ep: endpoint down", "title"]
    assert [e.kind for e in store.events(due.id)] == ["fired", "reminder"]


# -- silences beside the first page: resolves, queued pages ---------------------------------------------
def test_silence_quiets_the_resolve_too(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("ep", True))
    [alert] = store.list_alerts()
    store.silence(alert.id, 900, by="bob")
    run(book, store, down("ep", False))
    assert store.get_alert(alert.id).state == "resolved", "silenced alerts are still recorded"
    assert titles(store) == ["[FIRING] ep: endpoint down"]


def test_silence_stops_pages_already_queued(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("ep", True))
    [alert] = store.list_alerts()
    assert [n.status for n in store.notifications_for(alert.id)] == ["pending"]
    store.silence(alert.id, 900, by="bob")
    assert [n.status for n in store.notifications_for(alert.id)] == ["silenced"]
    assert store.due_notifications() == []


# -- the fingerprint keeps endpoints (and models) apart -------------------------------------------------
def test_fingerprint_depends_on_rule_endpoint_and_model() -> None:
    base = fingerprint("down", "a", "iris")
    assert base == fingerprint("down", "a", "iris")
    assert len({base, fingerprint("down", "b", "iris"), fingerprint("latency_p95", "a", "iris")}) == 3
    assert fingerprint("down", "a", "fraud") != base
    assert fingerprint("down", "a", None) == fingerprint("down", "a", "")
    # the separator keeps ("ab", "c") and ("a", "bc") apart
    assert fingerprint("down", "ab", "c") != fingerprint("down", "a", "bc")


def test_two_endpoints_down_are_two_alerts_and_a_silence_covers_only_one(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    run(book, store, down("a", True))
    run(book, store, down("b", True))
    alerts = {a.endpoint: a for a in store.list_alerts()}
    assert sorted(alerts) == ["a", "b"] and alerts["a"].fingerprint != alerts["b"].fingerprint
    store.silence(alerts["a"].id, 3600, by="bob")
    for endpoint in ("a", "b"):
        run(book, store, down(endpoint, False))
        run(book, store, down(endpoint, True))
    assert titles(store) == [
        "[FIRING] a: endpoint down",
        "[FIRING] b: endpoint down",
        "[RESOLVED] b: endpoint down",
        "[FIRING] b: endpoint down",
    ]
    assert book.is_firing("down", "a", None) and book.is_firing("down", "b", None)


# -- store first: one transaction for an alert and its pages --------------------------------------------
def new_alert(endpoint: str = "ep") -> NewAlert:
    return NewAlert(
        fingerprint=fingerprint("down", endpoint, None),
        rule="down",
        endpoint=endpoint,
        severity="critical",
        summary="gone",
        started_at=1_000_000.0,
    )


def message(kind: str = "firing") -> OutboxMessage:
    return OutboxMessage(kind, "chan", "json://127.0.0.1:9/hook", "critical", "title", "body")


def refuse_outbox_rows(store: Store) -> None:
    """A failure between the alert row and its outbox rows, inside SQLite (as a full disk would be)."""
    store._conn().execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON notifications BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )


def test_alert_is_not_committed_when_its_outbox_rows_fail(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _ = world
    refuse_outbox_rows(store)
    with pytest.raises((sqlite3.Error, StoreError)):
        store.open_alert(new_alert(), [message()])
    assert store.list_alerts() == [], "an alert without its pages would never page"
    assert store.query("SELECT count(*) AS n FROM alert_events")[0]["n"] == 0


def test_alert_is_not_committed_when_building_its_pages_fails(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _ = world

    def boom(_alert_id: int) -> list[OutboxMessage]:
        raise RuntimeError("rendering failed")

    with pytest.raises(RuntimeError):
        store.open_alert(new_alert(), boom)
    assert store.list_alerts() == []


def test_resolve_is_not_committed_when_its_outbox_rows_fail(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _ = world
    alert_id = store.open_alert(new_alert(), [message()])
    refuse_outbox_rows(store)
    with pytest.raises((sqlite3.Error, StoreError)):
        store.resolve_alert(alert_id, [message("resolved")])
    assert store.get_alert(alert_id).state == "firing"
    assert [e.kind for e in store.events(alert_id)] == ["fired"]


def test_reminder_is_not_recorded_when_its_outbox_rows_fail(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _ = world
    alert_id = store.open_alert(new_alert(), [message()])
    refuse_outbox_rows(store)
    with pytest.raises((sqlite3.Error, StoreError)):
        store.remind(alert_id, [message("reminder")])
    assert [e.kind for e in store.events(alert_id)] == ["fired"]


def test_book_write_that_failed_lands_whole_when_retried(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, book = world
    [write] = book.evaluate(down("ep", True))
    refuse_outbox_rows(store)
    with pytest.raises((sqlite3.Error, StoreError)):
        write(store)
    assert store.list_alerts() == [] and not write.done
    store._conn().execute("DROP TRIGGER refuse")
    write(store)
    [alert] = store.list_alerts()
    assert write.done and [n.kind for n in store.notifications_for(alert.id)] == ["firing"]


def test_outbox_rows_name_their_alert_and_stamp_last_notified(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _ = world
    alert_id = store.open_alert(new_alert(), [message(), message()])
    rows = store.notifications_for(alert_id)
    assert [(n.alert_id, n.status, n.attempts) for n in rows] == [(alert_id, "pending", 0)] * 2
    assert store.get_alert(alert_id).last_notified_at == 1_000_000.0


def test_adopt_open_returns_the_open_alert_and_writes_nothing(world) -> None:  # type: ignore[no-untyped-def]
    _, store, _, _ = world
    first = store.open_alert(new_alert(), [message()])
    again = store.open_alert(new_alert(), [message()], adopt_open=True)
    assert again == first
    assert len(store.list_alerts()) == 1 and len(store.notifications_for(first)) == 1
    other = store.open_alert(new_alert("other"), [message()], adopt_open=True)
    assert other != first, "another endpoint's alert is its own"


# -- the `down` alert carries its failure count ---------------------------------------------------------
def reading(failures: int, probes: int = 10, last_error: str | None = "connection refused") -> Reading:
    return Reading(
        endpoint="ep",
        model=None,
        now=1_000_000.0,
        interval=1.0,
        health="down" if failures else "up",
        probes=probes,
        consecutive_failures=failures,
        consecutive_invalid=0,
        last_error=last_error,
        served_version=None,
        expected_version=None,
        alias=None,
        window=WindowStats(),
        window_source="probe",
        traffic_measured=False,
        rps=None,
        throughput_baseline=None,
    )


def down_condition(settings: Settings, failures: int, **kwargs: object) -> Condition:
    return next(c for c in evaluate(settings, reading(failures, **kwargs)) if c.rule == "down")  # type: ignore[arg-type]


def test_down_condition_states_its_failure_count(world) -> None:  # type: ignore[no-untyped-def]
    settings, _, _, _ = world
    one = down_condition(settings, 1)
    assert one.active is None, "one failure is below the threshold and not evidence of health"
    three = down_condition(settings, 3)
    assert (three.active, three.value, three.threshold, three.severity) == (True, 3, 2, "critical")
    assert three.detail == "ep failed 3 consecutive probes (threshold 2) (last error: connection refused)"
    two = down_condition(settings, 2, last_error=None)
    assert two.active is True and two.detail == "ep failed 2 consecutive probes (threshold 2)"
    clear = down_condition(settings, 0)
    assert clear.active is False
    assert down_condition(settings, 0, probes=0).active is None, "no probe yet says nothing"


def test_down_alert_value_and_summary_carry_the_failure_count(world) -> None:  # type: ignore[no-untyped-def]
    settings, store, _, book = world
    run(book, store, down_condition(settings, 4))
    [alert] = store.list_alerts()
    assert alert.value == 4 and alert.threshold == 2
    assert alert.summary == "ep failed 4 consecutive probes (threshold 2) (last error: connection refused)"
    [page] = store.notifications_for(alert.id)
    assert page.title == "[FIRING] ep: endpoint down"
    assert page.body.splitlines()[0] == alert.summary
    assert f"Alert #{alert.id} (mlops-console alerts show {alert.id})." in page.body


def test_down_threshold_override_changes_when_it_fires(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "endpoints": [{"name": "ep", "url": "http://127.0.0.1:9"}],
            "rules": [{"rule": "down", "endpoint": "e*", "threshold": 5}],
        }
    )
    assert down_condition(settings, 4).active is None
    five = down_condition(settings, 5)
    assert five.active is True and five.threshold == 5
    assert five.detail.startswith("ep failed 5 consecutive probes (threshold 5)")
