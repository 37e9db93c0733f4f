"""The outbox's rows, exactly: what is due and in which order, what one delivery attempt records, and
pages already sent directly (while the store was unwritable) recorded as sent, never resent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mlops_console.core.alerts.book import fingerprint
from mlops_console.core.store import NewAlert, OutboxMessage, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "c.db")


def message(kind: str = "firing", channel: str = "chan", **extra: object) -> OutboxMessage:
    return OutboxMessage(kind, channel, f"json://127.0.0.1:9/{channel}", "critical", "title", "body", **extra)  # type: ignore[arg-type]


def open_alert(store: Store, messages: list[OutboxMessage], at: float | None = None) -> int:
    return store.open_alert(
        NewAlert(
            fingerprint=fingerprint("down", "ep", None),
            rule="down",
            endpoint="ep",
            severity="critical",
            summary="gone",
            started_at=at or time.time(),
        ),
        messages,
    )


def test_queued_rows_are_pending_due_now_and_stamp_the_alert(store: Store) -> None:
    at = time.time() - 5
    alert_id = open_alert(store, [message(channel="a"), message(channel="b")], at=at)
    rows = store.notifications_for(alert_id)
    assert [(n.channel, n.status, n.attempts, n.next_attempt_at, n.created_at, n.sent_at) for n in rows] == [
        ("a", "pending", 0, at, at, None),
        ("b", "pending", 0, at, at, None),
    ]
    assert [n.id for n in store.due_notifications()] == [n.id for n in rows]
    assert store.next_due_at() == at
    assert store.get_alert(alert_id).last_notified_at == at
    assert store.deliveries() == []


def test_no_messages_leave_the_alert_unstamped(store: Store) -> None:
    alert_id = open_alert(store, [])
    assert store.notifications_for(alert_id) == [] and store.get_alert(alert_id).last_notified_at is None
    assert store.next_due_at() is None


def test_a_page_sent_directly_is_recorded_as_sent_with_its_delivery(store: Store) -> None:
    at = time.time() - 10
    sent_at = at + 1
    alert_id = open_alert(
        store, [message(delivered_at=sent_at, duration_ms=12.5), message(channel="b")], at=at
    )
    direct, queued = store.notifications_for(alert_id)
    assert (direct.status, direct.attempts, direct.sent_at) == ("sent", 1, sent_at)
    assert (queued.status, queued.attempts, queued.sent_at) == ("pending", 0, None)
    assert [n.id for n in store.due_notifications()] == [queued.id], "never sent a second time"
    [delivery] = store.deliveries(direct.id)
    assert (delivery.at, delivery.ok, delivery.duration_ms, delivery.error) == (sent_at, True, 12.5, None)
    [event] = [e for e in store.events(alert_id) if e.kind == "notified"]
    assert (event.at, event.actor) == (sent_at, direct.target)
    assert event.note == "sent directly: the alert store was unwritable"
    assert event.data == {"notification": direct.id, "kind": "firing", "attempt": 1, "direct": True}


def test_due_rows_in_order_of_time_then_id_and_not_before_their_time(store: Store) -> None:
    now = time.time()
    later = open_alert(store, [message(channel="later")], at=now - 1)
    earlier = open_alert(store, [message(channel="earlier")], at=now - 100)
    future = open_alert(store, [message(channel="future")], at=now + 3600)
    due = store.due_notifications()
    assert [n.alert_id for n in due] == [earlier, later], "oldest first; a future retry waits"
    assert [n.alert_id for n in store.due_notifications(limit=1)] == [earlier]
    assert store.next_due_at() == pytest.approx(now - 100)
    assert future not in [n.alert_id for n in due]


def test_a_failed_attempt_is_retried_at_its_time_and_recorded(store: Store) -> None:
    alert_id = open_alert(store, [message()])
    [row] = store.due_notifications()
    retry_at = time.time() + 60
    store.record_delivery(row, False, 20.0, "HTTP 500", retry_at)
    [after] = store.notifications_for(alert_id)
    assert (after.status, after.attempts, after.next_attempt_at, after.sent_at, after.last_error) == (
        "pending",
        1,
        retry_at,
        None,
        "HTTP 500",
    )
    assert store.due_notifications() == [] and store.next_due_at() == retry_at
    [delivery] = store.deliveries(row.id)
    assert (delivery.ok, delivery.duration_ms, delivery.error) == (False, 20.0, "HTTP 500")
    [event] = [e for e in store.events(alert_id) if e.kind.startswith("notify")]
    assert (event.kind, event.actor, event.note) == ("notify_failed", row.target, "HTTP 500")
    assert event.at == delivery.at, "the timeline and the delivery record name the same moment"
    assert event.data == {"notification": row.id, "kind": "firing", "attempt": 1}


def test_a_delivered_attempt_is_sent_and_counted(store: Store) -> None:
    alert_id = open_alert(store, [message()])
    [row] = store.due_notifications()
    store.record_delivery(row, False, 5.0, "timeout", time.time() - 1)
    [again] = store.due_notifications()
    assert again.attempts == 1
    before = time.time()
    store.record_delivery(again, True, 7.0, None, None)
    [sent] = store.notifications_for(alert_id)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, None)
    assert sent.sent_at is not None and sent.sent_at >= before
    assert sent.next_attempt_at == again.next_attempt_at, "a sent row keeps its last schedule"
    assert store.due_notifications() == [] and store.next_due_at() is None
    assert [d.ok for d in store.deliveries(row.id)] == [False, True]
    kinds = [e.kind for e in store.events(alert_id) if e.kind.startswith("notif")]
    assert kinds == ["notify_failed", "notified"]
    assert [e.data["attempt"] for e in store.events(alert_id) if e.kind.startswith("notif")] == [1, 2]


def test_giving_up_is_dead_and_recorded(store: Store) -> None:
    alert_id = open_alert(store, [message()])
    [row] = store.due_notifications()
    store.record_delivery(row, False, 5.0, "refused", None)
    [dead] = store.notifications_for(alert_id)
    assert (dead.status, dead.attempts, dead.sent_at) == ("dead", 1, None)
    assert store.due_notifications() == [] and store.next_due_at() is None
    assert [e.kind for e in store.events(alert_id)][-1] == "notify_gave_up"


def test_a_test_message_without_an_alert_records_no_event(store: Store) -> None:
    with store.write() as db:
        from mlops_console.core.store.outbox import enqueue

        enqueue(db, None, [message("test")], time.time())
    [row] = store.due_notifications()
    assert row.alert_id is None and row.kind == "test"
    store.record_delivery(row, True, 1.0, None, None)
    assert store.query("SELECT count(*) AS n FROM alert_events")[0]["n"] == 0
    assert [d.notification_id for d in store.deliveries()] == [row.id]


def test_a_round_takes_at_most_fifty_due_rows_oldest_first(store: Store) -> None:
    at = time.time() - 100
    open_alert(store, [message(channel=f"c{i:02d}") for i in range(51)], at=at)
    due = store.due_notifications()
    assert len(due) == 50 and [n.channel for n in due] == [f"c{i:02d}" for i in range(50)]


def test_a_page_cut_off_twice_counts_both_and_its_timeline_says_who_stopped_and_when(store: Store) -> None:
    alert_id = open_alert(store, [message()])
    [row] = store.due_notifications()
    first = store.mark_sending(row, "pid 1 on a")
    assert first is not None and (first.interrupted, first.sending_by) == (0, "pid 1 on a")
    assert first.sending_at is not None
    # A marked row falls due when its mark is older than a delivery may take.
    assert (store.next_due_at(), store.next_due_at(5)) == (first.sending_at, first.sending_at + 5)
    # Its sender died two hours ago (the note's time is the mark's, not the clock's).
    store.query("UPDATE notifications SET sending_at=sending_at-7200")
    [first] = store.notifications_for(alert_id)
    assert first.sending_at is not None
    second = store.mark_sending(first, "pid 2 on b")
    assert second is not None and second.interrupted == 1
    third = store.mark_sending(second, "pid 3 on c")
    assert third is not None and third.interrupted == 2
    assert store.notifications_for(alert_id)[0].interrupted == 2
    cut_off = [e for e in store.events(alert_id) if e.kind == "notify_interrupted"]
    since = time.strftime("%H:%M:%S UTC", time.gmtime(first.sending_at))
    assert second.sending_at is not None
    assert (cut_off[0].at, cut_off[0].actor, cut_off[0].note, cut_off[0].data) == (
        second.sending_at,
        row.target,
        f"pid 1 on a stopped while sending this firing page ({since}), before recording whether it "
        "arrived: sent again, marked as a possible repeat",
        {"notification": row.id, "kind": "firing", "sender": "pid 1 on a", "since": first.sending_at},
    )
    assert [e.data["sender"] for e in cut_off if e.data] == ["pid 1 on a", "pid 2 on b"]
    # A mark left by a watcher that did not record its name (an older version) is told as such.
    store.query("UPDATE notifications SET sending_by=NULL")
    [unnamed] = store.notifications_for(alert_id)
    assert store.mark_sending(unnamed, "pid 4 on d") is not None
    last = store.events(alert_id)[-1]
    assert last.note is not None and last.note.startswith(
        "a watcher stopped while sending this firing page ("
    )
