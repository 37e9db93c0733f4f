"""Acknowledge and silence in the store: the exact rows a person's decision leaves, and nothing else.

What the CLI, the console and the reminders read back: who acknowledged or silenced, when, why, until
when; the audit trail beside the timeline; pending pages held back by a silence (sent ones kept); and
an alert beside it, of another fingerprint, left exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_console.core.limits import MAX_SILENCE_SECONDS, MAX_TEXT
from mlops_console.core.store import Store
from mlops_console.core.store import alerts as store_alerts
from mlops_console.core.store.rows import NewAlert, OutboxMessage

STARTED = 1_700_000_000.0
DECIDED = STARTED + 120.0


def page(kind: str = "firing") -> OutboxMessage:
    return OutboxMessage(kind, "chan-1", "json://127.0.0.1:9/hook", "critical", f"{kind} title", "body")


def new_alert(fingerprint: str, endpoint: str, model: str) -> NewAlert:
    return NewAlert(fingerprint, "down", endpoint, "critical", f"{endpoint} down", STARTED, model, "3", 4, 2)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    # The store's clock, fixed: every row written by a decision carries exactly this time.
    monkeypatch.setattr(store_alerts, "now", lambda: DECIDED)
    return Store(tmp_path / "c.db")


def two_alerts(store: Store) -> tuple[int, int]:
    one = store.open_alert(new_alert("down|ep-a", "ep-a", "iris"), [page()])
    other = store.open_alert(new_alert("down|ep-b", "ep-b", "wine"), [page()])
    return one, other


def test_acknowledge_records_who_when_and_why_on_the_alert_its_timeline_and_the_audit(store: Store) -> None:
    one, other = two_alerts(store)
    before_other = store.get_alert(other)

    returned = store.acknowledge(one, "alice", note="looking at the GPU node")

    alert = store.get_alert(one)
    assert returned == alert, "the caller gets the alert as now stored"
    assert (alert.state, alert.display_state) == ("acknowledged", "acknowledged")
    assert (alert.acked_by, alert.acked_at, alert.ack_note) == ("alice", DECIDED, "looking at the GPU node")
    assert alert.updated_at == DECIDED
    assert alert.started_at == STARTED, "acknowledging never moves the start of the incident"
    assert alert.silenced_until is None and alert.silenced_by is None

    acked = [e for e in store.events(one) if e.kind == "acknowledged"]
    assert [(e.at, e.actor, e.note, e.data) for e in acked] == [
        (DECIDED, "alice", "looking at the GPU node", None)
    ]
    audit = store.list_audit(action="ack")
    assert [
        (a.at, a.actor, a.action, a.model, a.endpoint, a.alert_id, a.reason, a.result, a.detail)
        for a in audit
    ] == [(DECIDED, "alice", "ack", "iris", "ep-a", one, "looking at the GPU node", "ok", None)]

    assert store.get_alert(other) == before_other, "the other fingerprint's alert is untouched"
    assert [e.kind for e in store.events(other)] == ["fired"]


def test_acknowledge_without_a_note_stores_none_and_keeps_pages_queued(store: Store) -> None:
    one, _ = two_alerts(store)
    store.acknowledge(one, "bob")
    alert = store.get_alert(one)
    assert (alert.acked_by, alert.ack_note) == ("bob", None)
    assert [e.note for e in store.events(one) if e.kind == "acknowledged"] == [None]
    assert [a.reason for a in store.list_audit(action="ack")] == [None]
    # An acknowledgement stops reminders; it does not swallow the page already on its way.
    assert [n.status for n in store.notifications_for(one)] == ["pending"]


def test_acknowledge_a_resolved_alert_is_refused_and_changes_nothing(store: Store) -> None:
    one, _ = two_alerts(store)
    store.resolve_alert(one, [], at=STARTED + 60)
    with pytest.raises(ValueError, match=f"^alert {one} is already resolved$"):
        store.acknowledge(one, "alice", note="late")
    alert = store.get_alert(one)
    assert (alert.state, alert.acked_by, alert.acked_at, alert.ack_note) == ("resolved", None, None, None)
    assert [e.kind for e in store.events(one)] == ["fired", "resolved"]
    assert store.list_audit(action="ack") == []


def test_acknowledge_an_unknown_alert_is_a_key_error(store: Store) -> None:
    two_alerts(store)
    with pytest.raises(KeyError):
        store.acknowledge(999, "alice")
    assert store.list_audit() == []


@pytest.mark.parametrize(
    ("field", "label"), [("by", "the acknowledging name"), ("note", "the note")], ids=["by", "note"]
)
def test_acknowledge_refuses_overlong_text_by_name_and_writes_nothing(
    store: Store, field: str, label: str
) -> None:
    one, _ = two_alerts(store)
    args = {"by": "alice", "note": "ok", field: "x" * (MAX_TEXT + 1)}
    with pytest.raises(ValueError, match=f"^{label} is too long \\({MAX_TEXT + 1} characters; at most"):
        store.acknowledge(one, args["by"], note=args["note"])
    assert store.get_alert(one).state == "firing"
    assert store.list_audit() == []
    # The limit itself is accepted.
    store.acknowledge(one, "a" * MAX_TEXT, note="n" * MAX_TEXT)
    assert store.get_alert(one).acked_by == "a" * MAX_TEXT


def test_silence_records_its_bounds_who_and_why_and_holds_back_only_this_alerts_pending_pages(
    store: Store,
) -> None:
    one = store.open_alert(new_alert("down|ep-a", "ep-a", "iris"), [page(), page("reminder")])
    other = store.open_alert(new_alert("down|ep-b", "ep-b", "wine"), [page()])
    # A page already sent stays sent: the silence holds back what has not gone out yet.
    store.record_delivery(store.notifications_for(one)[0], True, 5.0, None, None)
    before_other = store.get_alert(other)

    returned = store.silence(one, 3600, by="carol", note="maintenance")

    alert = store.get_alert(one)
    assert returned == alert
    assert (alert.silenced_until, alert.silenced_by, alert.updated_at) == (DECIDED + 3600, "carol", DECIDED)
    assert alert.state == "firing", "a silence is not an acknowledgement"
    assert alert.acked_by is None
    assert [n.status for n in store.notifications_for(one)] == ["sent", "silenced"]
    assert [n.status for n in store.notifications_for(other)] == ["pending"], "another alert still pages"

    silenced = [e for e in store.events(one) if e.kind == "silenced"]
    assert [(e.at, e.actor, e.note, e.data) for e in silenced] == [
        (DECIDED, "carol", "maintenance", {"until": DECIDED + 3600})
    ]
    audit = store.list_audit(action="silence")
    assert [
        (a.at, a.actor, a.action, a.model, a.endpoint, a.alert_id, a.reason, a.result, a.detail)
        for a in audit
    ] == [
        (
            DECIDED,
            "carol",
            "silence",
            "iris",
            "ep-a",
            one,
            "maintenance",
            "ok",
            {"until": DECIDED + 3600, "seconds": 3600},
        )
    ]
    assert store.get_alert(other) == before_other
    assert store.silenced_until("down|ep-b") is None, "the other fingerprint is not silenced"


def test_silence_covers_the_fingerprint_until_its_end_and_not_after(store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    one, _ = two_alerts(store)
    store.silence(one, 900, by="dave")
    assert store.silenced_until("down|ep-a") == DECIDED + 900
    monkeypatch.setattr(store_alerts, "now", lambda: DECIDED + 899.5)
    assert store.silenced_until("down|ep-a") == DECIDED + 900
    monkeypatch.setattr(store_alerts, "now", lambda: DECIDED + 900)
    assert store.silenced_until("down|ep-a") is None, "a silence ends at its last instant"


def test_silence_an_acknowledged_alert_keeps_the_acknowledgement(store: Store) -> None:
    one, _ = two_alerts(store)
    store.acknowledge(one, "alice", note="on it")
    store.silence(one, 60, by="bob")
    alert = store.get_alert(one)
    assert (alert.state, alert.acked_by, alert.ack_note) == ("acknowledged", "alice", "on it")
    assert (alert.silenced_by, alert.silenced_until) == ("bob", DECIDED + 60)
    assert [e.kind for e in store.events(one)] == ["fired", "acknowledged", "silenced"]
    assert [a.action for a in store.list_audit()] == ["silence", "ack"]


def test_silence_without_a_note_records_none(store: Store) -> None:
    one, _ = two_alerts(store)
    store.silence(one, 60, by="bob")
    assert [e.note for e in store.events(one) if e.kind == "silenced"] == [None]
    assert [a.reason for a in store.list_audit(action="silence")] == [None]


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (0, "a silence must last a positive time"),
        (-5, "a silence must last a positive time"),
        (float("nan"), "a silence must last a positive time"),
        (MAX_SILENCE_SECONDS + 1, "a silence lasts at most 30d"),
    ],
    ids=["zero", "negative", "nan", "over-30d"],
)
def test_silence_out_of_bounds_is_refused_and_writes_nothing(
    store: Store, seconds: float, message: str
) -> None:
    one, _ = two_alerts(store)
    with pytest.raises(ValueError, match=f"^{message}$"):
        store.silence(one, seconds, by="bob")
    assert store.get_alert(one).silenced_until is None
    assert [n.status for n in store.notifications_for(one)] == ["pending"]
    assert store.list_audit() == []


def test_silence_of_exactly_30_days_is_accepted(store: Store) -> None:
    one, _ = two_alerts(store)
    store.silence(one, MAX_SILENCE_SECONDS, by="bob")
    assert store.get_alert(one).silenced_until == DECIDED + MAX_SILENCE_SECONDS


@pytest.mark.parametrize(
    ("field", "label"), [("by", "the silencing name"), ("note", "the note")], ids=["by", "note"]
)
def test_silence_refuses_overlong_text_by_name_and_writes_nothing(
    store: Store, field: str, label: str
) -> None:
    one, _ = two_alerts(store)
    args = {"by": "bob", "note": "ok", field: "x" * (MAX_TEXT + 1)}
    with pytest.raises(ValueError, match=f"^{label} is too long \\({MAX_TEXT + 1} characters; at most"):
        store.silence(one, 60, by=args["by"], note=args["note"])
    assert store.get_alert(one).silenced_until is None
    assert [n.status for n in store.notifications_for(one)] == ["pending"]


def test_silence_an_unknown_alert_is_a_key_error_and_writes_nothing(store: Store) -> None:
    one, _ = two_alerts(store)
    with pytest.raises(KeyError):
        store.silence(999, 60, by="bob")
    assert store.list_audit() == []
    assert [n.status for n in store.notifications_for(one)] == ["pending"]
