"""Store first, notify second: failing sinks are retried with backoff, every attempt is recorded,
nothing is lost and nothing is sent twice; secrets never reach the store."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import parse_settings
from mlops_console.core import notifier as notifier_module
from mlops_console.core.alerts import open_external_alert
from mlops_console.core.notifier import Notifier, outbox_messages, redact
from mlops_console.core.store import OutboxMessage, Store, outbox
from tests._loopback import Sink, async_wait_for


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifier_module, "BACKOFF_BASE", 0.1)


async def test_failing_sink_is_retried_until_delivered_exactly_once(
    tmp_path: Path, fast_backoff: None
) -> None:
    sink = Sink(mode="fail").start()
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "notifications": [{"url": sink.url}],
            "notify": {"timeout": 1},
        }
    )
    store = Store(settings.store.path)
    alert_id = open_external_alert(
        store,
        settings,
        rule="down",
        endpoint="ep",
        model=None,
        version=None,
        severity="critical",
        summary="ep is down",
    )
    notifier = Notifier(settings, store, poll=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        await async_wait_for(lambda: sink.attempts >= 2, what="two failed attempts")
        sink.mode = "hang"
        await async_wait_for(lambda: sink.attempts >= 3, what="a timed out attempt")
        sink.mode = "ok"
        await async_wait_for(lambda: sink.received, timeout=20, what="delivery after recovery")
        await async_wait_for(lambda: store.notifications_for(alert_id)[0].status == "sent", what="sent")
    finally:
        stop.set()
        await task
        sink.stop()
    deliveries = store.deliveries()
    assert [d.ok for d in deliveries][-1] == 1
    assert sum(d.ok for d in deliveries) == 1
    assert len(deliveries) >= 4 and all(d.error for d in deliveries[:-1])
    assert len(sink.received) == 1, "a delivered notification must never be sent again"
    kinds = [e.kind for e in store.events(alert_id)]
    assert kinds.count("notify_failed") >= 3 and kinds[-1] == "notified"


async def test_gives_up_after_max_attempts_and_records_it(tmp_path: Path, fast_backoff: None) -> None:
    sink = Sink(mode="fail").start()
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "notifications": [{"url": sink.url}],
            "notify": {"max_attempts": 2},
        }
    )
    store = Store(settings.store.path)
    alert_id = open_external_alert(
        store,
        settings,
        rule="down",
        endpoint="ep",
        model=None,
        version=None,
        severity="critical",
        summary="down",
    )
    notifier = Notifier(settings, store)
    try:
        assert await notifier.drain_once() == 1
        await async_wait_for(store.due_notifications, what="retry due after backoff")
        assert await notifier.drain_once() == 1
    finally:
        sink.stop()
    assert store.notifications_for(alert_id)[0].status == "dead"
    assert store.notifications_for(alert_id)[0].attempts == 2
    assert store.due_notifications() == []
    assert "notify_gave_up" in [e.kind for e in store.events(alert_id)]


def test_routing_by_severity_and_endpoint(tmp_path: Path) -> None:
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "endpoints": [
                {"name": "a", "url": "http://127.0.0.1:1"},
                {"name": "b", "url": "http://127.0.0.1:2"},
            ],
            "notifications": [
                {"url": "json://127.0.0.1:9/pager", "min_severity": "critical"},
                {"url": "json://127.0.0.1:9/team-a", "endpoints": ["a"]},
            ],
        }
    )
    store = Store(settings.store.path)
    warn = open_external_alert(
        store, settings, rule="x", endpoint="b", model=None, version=None, severity="warning", summary="s"
    )
    crit = open_external_alert(
        store, settings, rule="x", endpoint="a", model=None, version=None, severity="critical", summary="s"
    )
    assert store.notifications_for(warn) == []
    assert {n.target for n in store.notifications_for(crit)} == {
        "json://127.0.0.1:9/pager",
        "json://127.0.0.1:9/team-a",
    }


def test_store_file_is_private_and_holds_no_secrets(tmp_path: Path) -> None:
    url = "json://admin:hunter2@127.0.0.1:9/hook?+X-Token=s3cret"
    settings = parse_settings({"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": url}]})
    store = Store(settings.store.path)
    open_external_alert(
        store, settings, rule="x", endpoint="e", model=None, version=None, severity="critical", summary="s"
    )
    assert stat.S_IMODE(Path(settings.store.path).stat().st_mode) == 0o600
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"hunter2" not in raw and b"s3cret" not in raw
    assert "hunter2" not in redact(url) and "s3cret" not in redact(url)


_RESOLVED = {
    "endpoint": "ep",
    "severity": "critical",
    "kind": "resolved",
    "title": "[RESOLVED] ep: endpoint down",
    "body": "cleared",
}


def _resolved(settings: Any) -> OutboxMessage:
    [message] = outbox_messages(settings, **_RESOLVED)
    return message


def _alert(store: Store, settings: Any) -> int:
    return open_external_alert(
        store,
        settings,
        rule="down",
        endpoint="ep",
        model=None,
        version=None,
        severity="critical",
        summary="s",
    )


async def test_a_page_marked_by_another_sender_is_sent_again_only_once_its_delivery_time_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mark younger than a delivery may take (`notify.timeout`) is a send still under way elsewhere;
    an older one was cut off (its sender died): sent again, once, saying it may be a repeat, and before
    the resolve that waited behind it."""
    sink = Sink().start()
    settings = parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "notifications": [{"url": sink.url}],
            "notify": {"timeout": 5},
        }
    )
    store = Store(settings.store.path)
    alert_id = _alert(store, settings)
    [row] = store.due_notifications()
    marked = store.mark_sending(row, "pid 4242 on elsewhere")
    assert marked is not None
    store.resolve_alert(alert_id, [_resolved(settings)])
    notifier = Notifier(settings, store)
    try:
        # Looked at just before the mark runs out (the test may get here later on a loaded machine).
        with monkeypatch.context() as clock:
            clock.setattr(outbox, "now", lambda: marked.sending_at + 5 - 0.01)
            assert await notifier.drain_once() == 0 and sink.attempts == 0
            # The resolve waits behind the marked page; the notifier sleeps until that mark runs out.
            assert store.next_due_at(5) == marked.sending_at + 5
        store.query("UPDATE notifications SET sending_at=sending_at-6 WHERE sending_at IS NOT NULL")
        assert await notifier.drain_once() == 2
        assert await notifier.drain_once() == 0
    finally:
        sink.stop()
    assert sink.titles() == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]
    again, resolved = (m["message"] for m in sink.received)
    assert again.endswith("\n" + notifier_module.POSSIBLE_REPEAT)
    assert notifier_module.POSSIBLE_REPEAT not in resolved
    firing, resolve = store.notifications_for(alert_id)
    assert (firing.status, firing.interrupted, firing.sending_at) == ("sent", 1, None)
    assert (resolve.status, resolve.interrupted) == ("sent", 0)
    events = store.events(alert_id)
    assert [e.kind for e in events] == ["fired", "resolved", "notify_interrupted", "notified", "notified"]
    assert "pid 4242 on elsewhere stopped while sending this firing page" in (events[2].note or "")
    assert (events[3].data or {})["possible_repeat"] is True
    assert "possible_repeat" not in (events[4].data or {})


async def test_an_unmarked_page_goes_out_without_the_repeat_line_and_is_marked_while_it_is_sent(
    tmp_path: Path,
) -> None:
    marks: list[tuple[Any, Any]] = []
    sink = Sink()
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": sink.url}]}
    )
    store = Store(settings.store.path)
    alert_id = _alert(store, settings)
    sink.on_receive = lambda _: marks.extend(
        (r.sending_at, r.sending_by) for r in Store(settings.store.path).notifications_for(alert_id)
    )
    sink.start()
    notifier = Notifier(settings, store)
    try:
        assert await notifier.drain_once() == 1
    finally:
        sink.stop()
    [(sending_at, sending_by)] = marks
    assert sending_at is not None and sending_by == notifier.identity
    assert notifier_module.POSSIBLE_REPEAT not in sink.received[0]["message"]
    assert [e.kind for e in store.events(alert_id)] == ["fired", "notified"]


async def test_a_silence_during_a_failing_delivery_keeps_the_page_from_being_retried(
    tmp_path: Path, fast_backoff: None
) -> None:
    sink = Sink(mode="fail")
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": sink.url}]}
    )
    store = Store(settings.store.path)
    alert_id = _alert(store, settings)
    sink.on_receive = lambda _: Store(settings.store.path).silence(alert_id, 3600, by="alice")
    sink.start()
    notifier = Notifier(settings, store)
    try:
        assert await notifier.drain_once() == 1
    finally:
        sink.stop()
    [row] = store.notifications_for(alert_id)
    assert (row.status, row.attempts) == ("silenced", 1)
    assert store.next_due_at() is None and store.due_notifications() == []


async def test_one_alerts_pages_reach_a_channel_in_order(tmp_path: Path) -> None:
    """A firing page still due (a retry, or sent again after an interrupted send) goes out before the
    resolve queued behind it, even when the pager is slow."""
    slow = {"[FIRING] ep: endpoint down": 0.5}
    sink = Sink(on_receive=lambda m: time.sleep(slow.get(m["title"], 0.0))).start()
    other = Sink().start()
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": sink.url}, {"url": other.url}]}
    )
    store = Store(settings.store.path)
    alert_id = _alert(store, settings)
    store.resolve_alert(alert_id, lambda: outbox_messages(settings, **_RESOLVED))
    try:
        assert await Notifier(settings, store).drain_once() == 4
    finally:
        sink.stop()
        other.stop()
    assert sink.titles() == ["[FIRING] ep: endpoint down", "[RESOLVED] ep: endpoint down"]
    assert other.titles() == sink.titles()
