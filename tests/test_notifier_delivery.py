"""Delivery to a real apprise channel, in process: what a page carries, what a failed one records, and
how the notifier drains, retries and wakes. Each test delivers to a loopback sink and takes about a
second, so the notifier's mutation run can use them (README: "Mutation testing")."""

from __future__ import annotations

import asyncio
import collections
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import NotificationSettings, Settings, parse_settings
from mlops_console.core import notifier as notifier_module
from mlops_console.core.notifier import Delivery, Notifier, channel_id, deliver, outbox_messages, redact
from mlops_console.core.store import OutboxMessage, Store
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
    tmp_path: Path,
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
