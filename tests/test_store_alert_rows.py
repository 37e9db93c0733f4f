"""Alert rows as the CLI and the console read them back: resolves, events, bulk imports, the lists
behind `alerts --state/--endpoint/--since`, and the counts in the header.

The store's clock is fixed, so every time is exact; each filter is checked against alerts that it must
leave out as well as those it must keep.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_console.core.store import Store
from mlops_console.core.store import alerts as store_alerts
from mlops_console.core.store.rows import NewAlert, OutboxMessage

STARTED = 1_700_000_000.0
DECIDED = STARTED + 120.0


class Clock:
    def __init__(self) -> None:
        self.at = DECIDED

    def __call__(self) -> float:
        return self.at


def page(kind: str = "firing") -> OutboxMessage:
    return OutboxMessage(kind, "chan-1", "json://127.0.0.1:9/hook", "critical", f"{kind} title", "body")


def new_alert(endpoint: str, started: float, n: int = 0) -> NewAlert:
    return NewAlert(f"down|{endpoint}|{n}", "down", endpoint, "critical", f"{endpoint} down", started, "iris")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fixed = Clock()
    monkeypatch.setattr(store_alerts, "now", fixed)
    return fixed


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store(tmp_path / "c.db")


def test_resolve_records_its_time_note_and_pages_on_the_alert(store: Store) -> None:
    one = store.open_alert(new_alert("ep-a", STARTED), [page()])
    store.resolve_alert(one, lambda: [page("resolved")], note="recovered", at=STARTED + 300)
    alert = store.get_alert(one)
    assert (alert.state, alert.display_state, alert.resolved_at, alert.updated_at) == (
        "resolved",
        "resolved",
        STARTED + 300,
        STARTED + 300,
    )
    assert [(e.kind, e.at, e.actor, e.note, e.data) for e in store.events(one)][1:] == [
        ("resolved", STARTED + 300, None, "recovered", None)
    ]
    firing, resolved = store.notifications_for(one)
    assert (resolved.kind, resolved.title, resolved.status, resolved.created_at) == (
        "resolved",
        "resolved title",
        "pending",
        STARTED + 300,
    )
    assert firing.kind == "firing"


def test_resolve_without_a_time_takes_the_stores_clock(store: Store) -> None:
    one = store.open_alert(new_alert("ep-a", STARTED), [])
    store.resolve_alert(one, [])
    assert (store.get_alert(one).resolved_at, store.get_alert(one).updated_at) == (DECIDED, DECIDED)
    assert [(e.kind, e.at, e.note) for e in store.events(one)] == [
        ("fired", STARTED, None),
        ("resolved", DECIDED, None),
    ]
    assert store.notifications_for(one) == []


def test_an_added_event_keeps_every_field(store: Store) -> None:
    one = store.open_alert(new_alert("ep-a", STARTED), [])
    store.add_event(
        one, "escalated", actor="watcher", note="to the second line", data={"after": 300}, at=STARTED + 5
    )
    store.add_event(one, "note")
    assert [(e.kind, e.at, e.actor, e.note, e.data) for e in store.events(one)][1:2] == [
        ("escalated", STARTED + 5, "watcher", "to the second line", {"after": 300})
    ]
    assert [(e.kind, e.actor, e.note, e.data) for e in store.events(one)][2:] == [("note", None, None, None)]


def test_bulk_import_writes_alerts_and_events_and_counts_the_events(store: Store) -> None:
    row = (7, "down|ep-x", "down", "ep-x", "iris", "3", "critical", "resolved", "ep-x down", 5.0, 3.0)
    alerts = [(*row, STARTED, STARTED + 60, STARTED + 60)]
    events = [
        (7, STARTED, "fired", None, None, '{"value": 5.0}'),
        (7, STARTED + 60, "resolved", "alice", "fixed", None),
    ]
    assert store.bulk_events(events, alerts) == 2
    alert = store.get_alert(7)
    assert (alert.fingerprint, alert.state, alert.started_at, alert.resolved_at, alert.value) == (
        "down|ep-x",
        "resolved",
        STARTED,
        STARTED + 60,
        5.0,
    )
    assert [(e.kind, e.at, e.actor, e.note, e.data) for e in store.events(7)] == [
        ("fired", STARTED, None, None, {"value": 5.0}),
        ("resolved", STARTED + 60, "alice", "fixed", None),
    ]
    # Events alone, for an alert already stored.
    assert store.bulk_events([(7, STARTED + 90, "note", "bob", "later", None)]) == 1
    assert [e.kind for e in store.events(7)] == ["fired", "resolved", "note"]


def five_alerts(store: Store, clock: Clock) -> dict[str, int]:
    """firing (ep-a), acknowledged (ep-b), resolved (ep-a), silenced (ep-b), silence over (ep-a)."""
    ids = {
        name: store.open_alert(new_alert(endpoint, STARTED + 10 * i, i), [])
        for i, (name, endpoint) in enumerate(
            [
                ("firing", "ep-a"),
                ("acked", "ep-b"),
                ("resolved", "ep-a"),
                ("silenced", "ep-b"),
                ("over", "ep-a"),
            ]
        )
    }
    store.acknowledge(ids["acked"], "alice")
    store.resolve_alert(ids["resolved"], [], at=STARTED + 25)
    store.silence(ids["silenced"], 600, "bob")
    clock.at = STARTED + 41
    store.silence(ids["over"], 60, "bob")  # until STARTED + 101, before DECIDED
    clock.at = DECIDED
    return ids


def test_alert_lists_filter_by_state_endpoint_and_start_newest_first(store: Store, clock: Clock) -> None:
    ids = five_alerts(store, clock)

    def listed(*args: str, **kwargs: object) -> list[str]:
        by_id = {v: k for k, v in ids.items()}
        return [by_id[a.id] for a in store.list_alerts(*args, **kwargs)]  # type: ignore[arg-type]

    assert listed() == ["over", "silenced", "resolved", "acked", "firing"]
    assert listed("all") == listed()
    assert listed("firing") == ["over", "silenced", "firing"], "a silence does not change the state"
    assert listed("acknowledged") == ["acked"]
    assert listed("resolved") == ["resolved"]
    assert listed("open") == ["over", "silenced", "acked", "firing"]
    assert listed("silenced") == ["silenced"], "a silence that ended is no longer one"
    store.silence(ids["resolved"], 600, "bob")
    assert listed("silenced") == ["silenced"], "a resolved alert is not shown as silenced"
    assert listed(endpoint="ep-a") == ["over", "resolved", "firing"]
    assert listed("open", endpoint="ep-b") == ["silenced", "acked"]
    assert listed(since=STARTED + 20) == ["over", "silenced", "resolved"]
    assert listed(limit=2) == ["over", "silenced"]
    shown = {a.id: a.display_state for a in store.list_alerts()}
    assert [shown[ids[n]] for n in ("firing", "acked", "resolved", "silenced", "over")] == [
        "firing",
        "acknowledged",
        "resolved",
        "silenced",
        "firing",
    ]


def test_header_counts_firing_acknowledged_and_silenced_alerts(store: Store, clock: Clock) -> None:
    assert store.alert_counts() == {"firing": 0, "acknowledged": 0, "silenced": 0}
    ids = five_alerts(store, clock)
    assert store.alert_counts() == {"firing": 2, "acknowledged": 1, "silenced": 1}
    # Acknowledged and silenced: counted once, as silenced.
    store.silence(ids["acked"], 600, "bob")
    assert store.alert_counts() == {"firing": 2, "acknowledged": 0, "silenced": 2}


def test_a_list_holds_100_alerts_unless_asked_and_open_alerts_holds_them_all(store: Store) -> None:
    for i in range(101):
        store.open_alert(new_alert("ep-a", STARTED + i, i), [])
    gone = store.open_alert(new_alert("ep-b", STARTED - 1), [])
    store.resolve_alert(gone, [])
    newest_first = store.list_alerts()
    assert len(newest_first) == 100 and newest_first[0].started_at == STARTED + 100
    assert len(store.list_alerts(limit=102)) == 102
    assert len(store.open_alerts()) == 101 and gone not in {a.id for a in store.open_alerts()}


def test_alerts_started_together_list_the_newest_first(store: Store) -> None:
    first = store.open_alert(new_alert("ep-a", STARTED, 1), [])
    second = store.open_alert(new_alert("ep-b", STARTED, 2), [])
    assert [a.id for a in store.list_alerts()] == [second, first]


def test_open_alert_joins_an_open_alert_of_its_fingerprint_only_when_asked(store: Store) -> None:
    first = store.open_alert(new_alert("ep-a", STARTED), [page()])
    # The engine asks to adopt (another engine recorded the incident): nothing is written.
    assert store.open_alert(new_alert("ep-a", STARTED + 5), [page()], adopt_open=True) == first
    assert [a.id for a in store.list_alerts()] == [first]
    assert len(store.notifications_for(first)) == 1
    # Not asked (an external alert): a new alert, with its own page.
    second = store.open_alert(new_alert("ep-a", STARTED + 6), [page()])
    assert second != first and [a.id for a in store.list_alerts()] == [second, first]
    assert len(store.notifications_for(second)) == 1


def test_an_unknown_alert_is_a_key_error_naming_it(store: Store) -> None:
    with pytest.raises(KeyError) as raised:
        store.get_alert(999)
    assert raised.value.args == (999,)


def test_open_alert_writes_every_field_its_events_and_its_pages_at_its_start(store: Store) -> None:
    evidence = {"detector": "mad", "observed": 2.5, "band": [0.1, 1.0]}
    alert = NewAlert(
        "latency|ep-a",
        "latency",
        "ep-a",
        "warning",
        "ep-a p95 2.5 s",
        STARTED,
        model="iris",
        version="3",
        value=2.5,
        threshold=1.0,
        flapping=True,
        runbook="https://runbooks.example/latency",
        evidence=evidence,
    )
    # The pages may name the alert: they are made from its id inside the transaction.
    alert_id = store.open_alert(
        alert,
        lambda i: [OutboxMessage("firing", "chan-1", "json://h/x", "warning", f"alert {i}", "b")],
        events=["flapping"],
    )
    got = store.get_alert(alert_id)
    assert (
        got.fingerprint,
        got.rule,
        got.endpoint,
        got.model,
        got.version,
        got.severity,
        got.summary,
        got.value,
        got.threshold,
        got.flapping,
        got.runbook,
        got.state,
        got.started_at,
        got.updated_at,
        got.last_notified_at,
        got.resolved_at,
    ) == (
        "latency|ep-a",
        "latency",
        "ep-a",
        "iris",
        "3",
        "warning",
        "ep-a p95 2.5 s",
        2.5,
        1.0,
        True,
        "https://runbooks.example/latency",
        "firing",
        STARTED,
        STARTED,
        STARTED,
        None,
    )
    assert [(e.kind, e.at, e.actor, e.note, e.data) for e in store.events(alert_id)] == [
        ("fired", STARTED, None, None, {"value": 2.5, "evidence": evidence}),
        ("flapping", STARTED, None, None, None),
    ]
    assert [
        (n.kind, n.title, n.status, n.attempts, n.created_at, n.next_attempt_at)
        for n in store.notifications_for(alert_id)
    ] == [("firing", f"alert {alert_id}", "pending", 0, STARTED, STARTED)]


def test_an_alert_without_a_start_or_evidence_starts_on_the_stores_clock(store: Store) -> None:
    alert_id = store.open_alert(new_alert("ep-a", 0.0), [page()])
    got = store.get_alert(alert_id)
    assert (got.started_at, got.updated_at, got.flapping, got.model, got.value) == (
        DECIDED,
        DECIDED,
        False,
        "iris",
        None,
    )
    assert [(e.kind, e.at, e.data) for e in store.events(alert_id)] == [("fired", DECIDED, {"value": None})]
    [queued] = store.notifications_for(alert_id)
    assert (queued.created_at, queued.next_attempt_at) == (DECIDED, DECIDED)
