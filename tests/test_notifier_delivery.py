"""Delivery to a real apprise channel, in process: what a page carries, what a failed one records, and
how the notifier drains, retries and wakes. Each test delivers to a loopback sink and takes about a
second, so the notifier's mutation run can use them (README: "Mutation testing")."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import NotificationSettings, Settings, parse_settings
from mlops_console.core import notifier as notifier_module
from mlops_console.core.notifier import Delivery, Notifier, channel_id, deliver, outbox_messages, redact
from mlops_console.core.store import OutboxMessage, Store
from mlops_console.core.store import outbox as outbox_module
from mlops_console.core.store.outbox import enqueue
from mlops_console.core.store.rows import NewAlert
from tests._loopback import Sink, async_wait_for, free_port


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def settings_for(tmp_path: Path, *channels: dict[str, Any], **notify: Any) -> Settings:
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "c.db")},
            "notifications": list(channels),
            "notify": {"timeout": 2, **notify},
        }
    )


def page(channel: str, target: str, title: str = "[FIRING] ep: endpoint down") -> OutboxMessage:
    return OutboxMessage("firing", channel, target, "critical", title, "ep is down")


def alert_with(store: Store, *messages: OutboxMessage, fingerprint: str = "down|ep") -> int:
    alert = NewAlert(fingerprint, "down", "ep", "critical", "ep is down", time.time())
    return store.open_alert(alert, list(messages))


def test_channel_ids_are_the_hash_of_the_url_as_written() -> None:
    # Queued rows name their channel by this id: a change would orphan every row already queued.
    assert channel_id("json://a/${T}") == "6c450b5dedf331c1"
    assert channel_id("x") == "2d711642b726b044"


def test_outbox_rows_go_to_the_channels_that_route_the_endpoint_severity_and_escalation(
    tmp_path: Path,
) -> None:
    everyone, pager, team_b, second_line = (
        "json://127.0.0.1:9/all",
        "json://127.0.0.1:9/pager",
        "json://127.0.0.1:9/team-b",
        "json://127.0.0.1:9/second/SecondTok99",
    )
    settings = settings_for(
        tmp_path,
        {"url": everyone},
        {"url": pager, "min_severity": "critical"},
        {"url": team_b, "endpoints": ["ep-b*"]},
        {"url": second_line, "after": "5m"},
    )

    def routed(**kwargs: Any) -> list[tuple[str, str, str, str, str, str]]:
        args = {"endpoint": "ep-a", "severity": "warning", "kind": "firing", "title": "T", "body": "B"}
        return [
            (m.kind, m.channel, m.target, m.severity, m.title, m.body)
            for m in outbox_messages(settings, **(args | kwargs))
        ]

    def row(url: str, kind: str = "firing", severity: str = "warning") -> tuple[str, ...]:
        return (kind, channel_id(url), redact(url), severity, "T", "B")

    assert routed() == [row(everyone)]
    assert routed(severity="critical") == [
        row(everyone, severity="critical"),
        row(pager, severity="critical"),
    ]
    assert routed(endpoint="ep-b1") == [row(everyone), row(team_b)]
    # The escalation channel hears only about the alerts escalated to it.
    assert routed(severity="critical", escalated={channel_id(second_line)}) == [
        row(everyone, severity="critical"),
        row(pager, severity="critical"),
        row(second_line, severity="critical"),
    ]
    assert routed(escalated={channel_id(pager)}) == [row(everyone)]
    # A test page reaches every channel, whatever its routing, with the severity it was given.
    assert routed(kind="test", severity="info") == [
        row(url, "test", "info") for url in (everyone, pager, team_b, second_line)
    ]
    assert "SecondTok99" not in str(routed(kind="test"))


def test_a_delivered_page_carries_its_title_body_and_type(sink: Sink) -> None:
    sink.delay = 0.3
    before = time.perf_counter()
    delivery = deliver(sink.url, "[FIRING] ep: down", "ep is down\nsince 12:00", "warning", "firing", 2)
    took = time.perf_counter() - before
    assert (delivery.ok, delivery.error) == (True, None)
    # The duration recorded is the delivery's, in milliseconds: the pager's 0.3 s at least, and no more
    # than the call took.
    assert 300 <= delivery.duration_ms <= took * 1000
    [message] = sink.received
    assert (message["title"], message["message"], message["type"]) == (
        "[FIRING] ep: down",
        "ep is down\nsince 12:00",
        "warning",
    )


def test_a_refused_or_timed_out_page_says_why() -> None:
    failing = Sink(mode="fail").start()
    try:
        refused = deliver(failing.url, "t", "b", "critical", "firing", 2)
        failing.mode = "hang"
        timed_out = deliver(failing.url, "t", "b", "critical", "firing", 0.3)
    finally:
        failing.stop()
    assert not refused.ok and refused.error is not None
    assert refused.error.endswith("error=500.")
    assert not timed_out.ok and timed_out.error is not None
    assert timed_out.error.startswith("timed out; ")
    assert failing.received == []


def test_a_channel_plugin_that_raises_fails_the_page_with_a_reason() -> None:
    # A plugin crashing (a custom apprise notification here, registered for real) is caught by apprise
    # itself and reported as a failed delivery; the notifier records it and retries, never crashes.
    from apprise.decorators import notify

    @notify(on="mlopsboom")
    def boom(body: str, title: str, notify_type: str, *args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the plugin crashed")

    delivery = deliver("mlopsboom://channel", "t", "b", "critical", "firing", 2)
    assert (delivery.ok, delivery.error) == (
        False,
        "An exception occured sending a Custom - mlopsboom notification.",
    )


def test_a_url_apprise_cannot_use_or_a_missing_variable_is_reported_without_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unknown = deliver("nosuchscheme://host/path", "t", "b", "critical", "firing", 2)
    assert (unknown.ok, unknown.error) == (False, "apprise does not understand this URL")
    monkeypatch.delenv("ABSENT_HOOK", raising=False)
    missing = deliver(
        NotificationSettings(url="json://127.0.0.1:9/${ABSENT_HOOK}"), "t", "b", "critical", "firing", 2
    )
    assert missing == Delivery(False, "cannot resolve the URL: ${ABSENT_HOOK} not set", 0.0)


def test_an_error_quoting_a_variables_value_shows_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    # apprise's connection error names the host: the host came from ${PAGER_HOST}, so that is shown.
    monkeypatch.setenv("PAGER_HOST", "127.0.0.1")
    channel = NotificationSettings(url=f"json://${{PAGER_HOST}}:{free_port()}/hook")
    delivery = deliver(channel, "t", "b", "critical", "firing", 2)
    assert not delivery.ok and delivery.error is not None
    assert "127.0.0.1" not in delivery.error
    assert delivery.error.endswith(" to ${PAGER_HOST}."), delivery.error


def test_a_long_error_is_cut_to_500_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    # The error lands in the outbox row and the timeline: a host named by a long reference quotes it
    # whole, so the text is cut, at exactly 500 characters.
    name = "PAGER_HOST_" + "X" * 600
    monkeypatch.setenv(name, "127.0.0.1")
    delivery = deliver(f"json://${{{name}}}:{free_port()}/hook", "t", "b", "critical", "firing", 2)
    assert not delivery.ok and delivery.error is not None
    assert len(delivery.error) == 500, delivery.error
    head, reference, _ = delivery.error.partition(" to ${PAGER_HOST_")
    assert reference and delivery.error == (f"{head} to ${{{name}}}.")[:500]


async def test_the_notifier_delivers_rows_queued_under_the_expanded_urls_id_and_counts_outcomes(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows queued before channel ids were taken from the URL as written carry the expanded URL's id;
    a row whose channel is gone is given up at once, without a retry."""
    monkeypatch.setenv("HOOK_PATH", "hook")
    template = f"json://127.0.0.1:{sink.port}/${{HOOK_PATH}}"
    settings = settings_for(tmp_path, {"url": template})
    store = Store(settings.store.path)
    shown = redact(template)
    old = alert_with(store, page(channel_id(sink.url), shown, "old id"))
    new = alert_with(store, page(channel_id(template), shown, "new id"), fingerprint="down|ep2")
    gone = alert_with(store, page("0123456789abcdef", "json://gone/x", "gone"), fingerprint="down|ep3")
    counted: collections.Counter[tuple[str, bool]] = collections.Counter()
    notifier = Notifier(settings, store, outcomes=counted)
    assert notifier.outcomes is counted
    assert notifier.identity == f"pid {os.getpid()} on {os.uname().nodename}"
    assert await notifier.drain_once() == 3
    assert sorted(sink.titles()) == ["new id", "old id"]
    assert counted == collections.Counter({(shown, True): 2}), "a missing channel is no delivery attempt"
    for alert_id in (old, new):
        [row] = store.notifications_for(alert_id)
        assert (row.status, row.attempts, row.last_error, row.sending_at) == ("sent", 1, None, None)
    [row] = store.notifications_for(gone)
    assert (row.status, row.attempts, row.last_error) == ("dead", 1, "channel no longer configured")
    assert await notifier.drain_once() == 0
    assert len(sink.received) == 2


async def test_a_failed_page_is_retried_after_its_backoff_and_given_up_after_max_attempts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = Sink(mode="fail").start()
    settings = settings_for(tmp_path, {"url": failing.url}, max_attempts=3)
    store = Store(settings.store.path)
    alert_id = alert_with(store, page(channel_id(failing.url), redact(failing.url)))
    notifier = Notifier(settings, store)
    try:
        before = time.time()
        assert await notifier.drain_once() == 1
        after = time.time()
        [row] = store.notifications_for(alert_id)
        # First retry one second (BACKOFF_BASE) after the failed attempt.
        assert (row.status, row.attempts) == ("pending", 1)
        assert before + 1.0 <= row.next_attempt_at <= after + 1.0
        assert row.last_error is not None and row.last_error.endswith("error=500.")
        # Looked at just before its retry is due (the test may run later than that on a loaded machine).
        with monkeypatch.context() as clock:
            clock.setattr(outbox_module, "now", lambda: row.next_attempt_at - 0.01)
            assert await notifier.drain_once() == 0, "not due before its backoff"
        store.query("UPDATE notifications SET next_attempt_at=0")
        before = time.time()
        assert await notifier.drain_once() == 1
        after = time.time()
        [row] = store.notifications_for(alert_id)
        assert (row.status, row.attempts) == ("pending", 2)
        assert before + 2.0 <= row.next_attempt_at <= after + 2.0, "then two seconds"
        store.query("UPDATE notifications SET next_attempt_at=0")
        assert await notifier.drain_once() == 1
    finally:
        failing.stop()
    [row] = store.notifications_for(alert_id)
    assert (row.status, row.attempts) == ("dead", 3)
    assert notifier.outcomes == collections.Counter({(redact(failing.url), False): 3})
    assert failing.attempts == 3


async def test_the_running_notifier_sends_at_once_when_woken_retries_when_due_and_stops_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a poll of a minute, a wake sends a new page at once, a retry goes out at its due time (not
    at the next poll), and stop ends the loop at once."""
    monkeypatch.setattr(notifier_module, "BACKOFF_BASE", 0.2)
    failing = Sink(mode="fail").start()
    settings = settings_for(tmp_path, {"url": failing.url}, max_attempts=2)
    store = Store(settings.store.path)
    notifier = Notifier(settings, store, poll=60.0)
    assert notifier._stale_after == 2.0, "a mark older than one delivery's timeout was abandoned"
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        await asyncio.sleep(0.2)  # the first round found nothing and waits for a minute
        alert_id = alert_with(store, page(channel_id(failing.url), redact(failing.url)))
        notifier.wake()
        await async_wait_for(lambda: failing.attempts >= 2, timeout=10, what="first try and its retry")
        await async_wait_for(
            lambda: store.notifications_for(alert_id)[0].status == "dead", timeout=10, what="given up"
        )
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        stop.set()
        failing.stop()
    assert task.done() and task.exception() is None
    assert [e.kind for e in store.events(alert_id)] == ["fired", "notify_failed", "notify_gave_up"]


async def test_a_page_queued_while_a_round_reads_the_store_goes_out_at_once_not_at_the_next_poll(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wake that lands while a round awaits the store is kept for the next round (with a poll of a
    minute, losing it would hold the page for that minute); and one wake makes one more round, not a
    busy loop."""
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    channel, target = channel_id(sink.url), redact(sink.url)
    rounds = 0
    in_round, go_on = threading.Event(), threading.Event()
    reads, next_due = store.due_notifications, store.next_due_at

    def counted(*args: Any) -> Any:
        nonlocal rounds
        rounds += 1
        return reads(*args)

    def held_once(*args: Any) -> Any:
        answer = next_due(*args)
        if not in_round.is_set():  # the first round, having read the store, waits here until let go
            in_round.set()
            go_on.wait(10)
        return answer

    monkeypatch.setattr(store, "due_notifications", counted)
    monkeypatch.setattr(store, "next_due_at", held_once)
    stop = asyncio.Event()
    notifier = Notifier(settings, store, poll=60.0)
    task = asyncio.create_task(notifier.run(stop))
    try:
        await async_wait_for(in_round.is_set, what="the first round, reading the store")
        first = alert_with(store, page(channel, target, "first"))
        notifier.wake()  # as the engine does right after committing
        go_on.set()
        await async_wait_for(lambda: sink.titles() == ["first"], timeout=10, what="the page, not in a minute")
        await async_wait_for(lambda: store.notifications_for(first)[0].status == "sent", what="its record")
        second = alert_with(store, page(channel, target, "second"), fingerprint="down|ep2")
        notifier.wake()
        await async_wait_for(lambda: store.notifications_for(second)[0].status == "sent", what="the next")
    finally:
        go_on.set()
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert sink.titles() == ["first", "second"]
    assert rounds <= 4, f"{rounds} rounds for two wakes: it kept polling"


def break_table(path: str, sql: str) -> None:
    """A write the store's own code never makes (a trigger, a renamed table): the store refusing, for real."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(sql)
        db.commit()


def delivered(store: Store, alert_id: int) -> list[tuple[str, int, float | None, str | None, float | None]]:
    return [
        (r.status, r.attempts, r.sent_at, r.last_error, r.sending_at)
        for r in store.notifications_for(alert_id)
    ]


async def test_a_drained_page_records_its_delivery_row_and_log_line_and_keeps_its_schedule(
    tmp_path: Path, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    target = redact(sink.url)
    alert_id = alert_with(store, page(channel_id(sink.url), target))
    gone = alert_with(store, page("0123456789abcdef", "json://gone/x", "gone"), fingerprint="down|ep2")
    [queued] = store.notifications_for(alert_id)
    with caplog.at_level(logging.INFO, logger=notifier_module.__name__):
        assert await Notifier(settings, store).drain_once() == 2
    [message] = sink.received
    assert (message["title"], message["message"], message["type"]) == (
        "[FIRING] ep: endpoint down",
        "ep is down",
        "failure",
    )
    [row] = store.notifications_for(alert_id)
    assert (row.status, row.attempts, row.last_error, row.sending_at, row.sending_by) == (
        "sent",
        1,
        None,
        None,
        None,
    )
    assert row.sent_at is not None and row.next_attempt_at == queued.next_attempt_at, "no retry scheduled"
    [ok] = store.deliveries(row.id)
    assert (ok.ok, ok.error) == (True, None) and ok.duration_ms is not None and ok.duration_ms > 0
    [gone_row] = store.notifications_for(gone)
    assert [(d.ok, d.duration_ms, d.error) for d in store.deliveries(gone_row.id)] == [
        (False, 0.0, "channel no longer configured")
    ]
    assert sorted((r.levelno, r.getMessage()) for r in caplog.records) == [
        (logging.INFO, f"notification {row.id} to {target}: delivered"),
        (logging.WARNING, f"notification {gone_row.id} to json://gone/x: channel no longer configured"),
    ]


async def test_a_channel_whose_variable_is_unset_fails_its_page_with_the_reason_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ABSENT_HOOK", raising=False)
    template = "json://127.0.0.1:9/${ABSENT_HOOK}"
    # As the watcher loads it: a variable a notification URL needs may be set later, where it is used.
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": template}]}, require_env=False
    )
    store = Store(settings.store.path)
    alert_id = alert_with(store, page(channel_id(template), redact(template)))
    before = time.time()
    assert await Notifier(settings, store).drain_once() == 1
    [(status, attempts, sent_at, error, sending_at)] = delivered(store, alert_id)
    assert (status, attempts, sent_at, error, sending_at) == (
        "pending",
        1,
        None,
        "cannot resolve the URL: ${ABSENT_HOOK} not set",
        None,
    )
    assert store.notifications_for(alert_id)[0].next_attempt_at >= before + 1.0


async def test_a_page_being_sent_by_another_notifier_is_left_to_it(tmp_path: Path) -> None:
    unstarted = Sink()  # nothing may be sent
    settings = settings_for(tmp_path, {"url": unstarted.url})
    store = Store(settings.store.path)
    alert_with(store, page(channel_id(unstarted.url), redact(unstarted.url)))
    [row] = store.due_notifications()
    assert store.mark_sending(row, "pid 1 on elsewhere") is not None
    assert await Notifier(settings, store).drain_once() == 0


async def test_more_than_fifty_due_pages_go_out_fifty_a_round(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = Store(settings.store.path)
    alert_with(store, *[page("0123456789abcdef", "json://gone/x", f"page {n}") for n in range(51)])
    notifier = Notifier(settings, store)
    assert [await notifier.drain_once() for _ in range(3)] == [50, 1, 0]


async def test_the_store_refusing_the_mark_sends_the_page_anyway_and_records_it(
    tmp_path: Path, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    """A page is never held back by its bookkeeping. One whose earlier send was cut off (marked long ago
    by a sender that stopped) still says it may be a repeat."""
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    channel, target = channel_id(sink.url), redact(sink.url)
    fresh = alert_with(store, page(channel, target, "fresh"))
    cut_off = alert_with(store, page(channel, target, "cut off"), fingerprint="down|ep2")
    [_, row] = store.due_notifications()
    assert store.mark_sending(row, "pid 1 on elsewhere") is not None
    store.query("UPDATE notifications SET sending_at=sending_at-60 WHERE sending_at IS NOT NULL")
    break_table(
        settings.store.path,
        "CREATE TRIGGER no_marks BEFORE UPDATE OF sending_at ON notifications "
        "WHEN NEW.sending_at IS NOT NULL BEGIN SELECT RAISE(ABORT, 'no marks'); END",
    )
    with caplog.at_level(logging.WARNING, logger=notifier_module.__name__):
        assert await Notifier(settings, store).drain_once() == 2
    bodies = {m["title"]: m["message"] for m in sink.received}
    assert bodies == {"fresh": "ep is down", "cut off": "ep is down\n" + notifier_module.POSSIBLE_REPEAT}
    for alert_id, interrupted in ((fresh, 0), (cut_off, 1)):
        [n] = store.notifications_for(alert_id)
        assert (n.status, n.attempts, n.sending_at, n.interrupted) == ("sent", 1, None, interrupted)
    unmarked = sorted(r.getMessage() for r in caplog.records if "unmarked" in r.getMessage())
    assert unmarked == [f"notification {n} sent unmarked: no marks" for n in (1, 2)]


async def test_a_delivery_the_store_cannot_record_is_recorded_later_and_never_sent_again(
    tmp_path: Path, sink: Sink
) -> None:
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    alert_id = alert_with(store, page(channel_id(sink.url), redact(sink.url)))
    refuse = (
        "CREATE TRIGGER no_records BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    break_table(settings.store.path, refuse)
    notifier = Notifier(settings, store)
    with pytest.raises(sqlite3.Error, match="disk full"):
        await notifier.drain_once()
    [row] = store.notifications_for(alert_id)
    assert (row.status, row.attempts, len(sink.received)) == ("pending", 0, 1)
    assert row.sending_at is not None, "marked as being sent: nobody sends it again meanwhile"
    break_table(settings.store.path, "DROP TRIGGER no_records")
    assert await notifier.drain_once() == 0, "recorded first, so not due again"
    assert await notifier.drain_once() == 0
    assert delivered(store, alert_id)[0][:2] == ("sent", 1) and len(sink.received) == 1
    assert [d.ok for d in store.deliveries()] == [True], "recorded once"


async def test_a_round_cancelled_mid_delivery_is_recorded_before_the_next_and_sends_nothing_twice(
    tmp_path: Path, sink: Sink
) -> None:
    sink.delay = 0.5  # a slow pager: the round is cancelled while it answers
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    alert_id = alert_with(store, page(channel_id(sink.url), redact(sink.url)))
    notifier = Notifier(settings, store)
    round_ = asyncio.ensure_future(notifier.drain_once())
    await async_wait_for(lambda: sink.attempts, what="the page reaching the pager")
    round_.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_
    assert await notifier.drain_once() == 0
    assert delivered(store, alert_id)[0][:2] == ("sent", 1)
    assert len(sink.received) == 1 and len(store.deliveries()) == 1


async def test_a_page_silenced_while_the_one_before_it_is_sent_is_not_sent(
    tmp_path: Path, sink: Sink
) -> None:
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    channel, target = channel_id(sink.url), redact(sink.url)
    alert_id = alert_with(store, page(channel, target, "first"), page(channel, target, "second"))
    sink.on_receive = lambda _: Store(settings.store.path).silence(alert_id, 3600, by="alice")
    assert await Notifier(settings, store).drain_once() == 2
    assert sink.titles() == ["first"]
    first, second = store.notifications_for(alert_id)
    assert [(n.status, n.attempts) for n in (first, second)] == [("sent", 1), ("silenced", 0)]
    assert store.deliveries(second.id) == []


@pytest.mark.parametrize("alerts", [True, False], ids=["two alerts", "two test pages"])
async def test_pages_of_different_alerts_or_test_pages_go_out_side_by_side(
    tmp_path: Path, sink: Sink, alerts: bool
) -> None:
    """A pager slow to answer one page does not hold back another alert's (or another test page)."""
    second_arrived = threading.Event()
    waited: list[bool] = []

    def on_receive(message: dict[str, Any]) -> None:
        if message["title"] == "one":
            waited.append(second_arrived.wait(timeout=5))
        else:
            second_arrived.set()

    sink.on_receive = on_receive
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    channel, target = channel_id(sink.url), redact(sink.url)
    if alerts:
        alert_with(store, page(channel, target, "one"))
        alert_with(store, page(channel, target, "two"), fingerprint="down|ep2")
    else:
        with store.write() as db:
            enqueue(db, None, [page(channel, target, "one"), page(channel, target, "two")], time.time())
    assert await Notifier(settings, store).drain_once() == 2
    assert waited == [True], "the second page arrived while the first was still being answered"
    assert sorted(sink.titles()) == ["one", "two"]


async def test_a_store_that_keeps_refusing_warns_once_and_again_after_it_recovered(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    rounds = 0
    reads = store.due_notifications

    def counted(*args: Any) -> Any:
        nonlocal rounds
        rounds += 1
        return reads(*args)

    monkeypatch.setattr(store, "due_notifications", counted)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

    away = "ALTER TABLE notifications RENAME TO notifications_away"
    back = "ALTER TABLE notifications_away RENAME TO notifications"
    notifier = Notifier(settings, store, poll=0.02)
    stop = asyncio.Event()
    break_table(settings.store.path, away)
    with caplog.at_level(logging.WARNING, logger=notifier_module.__name__):
        task = asyncio.create_task(notifier.run(stop))
        try:
            await async_wait_for(lambda: rounds >= 5, what="five refused rounds")
            failed = f"notifier round failed: store {settings.store.path}: not an mlops-console store"
            assert warnings() == [f"{failed} (no such table: notifications); retrying"]
            break_table(settings.store.path, back)
            alert_id = alert_with(store, page(channel_id(sink.url), redact(sink.url)))
            await async_wait_for(
                lambda: store.notifications_for(alert_id)[0].status == "sent", what="the page, once back"
            )
            seen = rounds
            await async_wait_for(lambda: rounds > seen, what="a round after it: the good round is over")
            break_table(settings.store.path, away)
            await async_wait_for(lambda: len(warnings()) == 2, what="a warning for the new failure")
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=5)
    assert task.exception() is None


async def test_a_running_notifier_sleeps_until_another_senders_mark_runs_out_then_sends_again(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page marked by a sender that stopped falls due when its mark is older than a delivery may take
    (`notify.timeout`, 2 s here): the notifier waits for that moment, rather than polling meanwhile."""
    settings = settings_for(tmp_path, {"url": sink.url})
    store = Store(settings.store.path)
    alert_id = alert_with(store, page(channel_id(sink.url), redact(sink.url)))
    [row] = store.due_notifications()
    assert store.mark_sending(row, "pid 1 on elsewhere") is not None
    rounds = 0
    reads = store.due_notifications

    def counted(*args: Any) -> Any:
        nonlocal rounds
        rounds += 1
        return reads(*args)

    monkeypatch.setattr(store, "due_notifications", counted)
    stop = asyncio.Event()
    task = asyncio.create_task(Notifier(settings, store, poll=60.0).run(stop))
    try:
        await async_wait_for(lambda: store.notifications_for(alert_id)[0].status == "sent", what="the page")
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    assert sink.received[0]["message"].endswith(notifier_module.POSSIBLE_REPEAT)
    assert rounds <= 4, f"{rounds} rounds: it polled while the mark ran out"
