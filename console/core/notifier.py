"""Notifications through apprise: the outbox rows an alert creates, and the worker that drains them.

Store first, notify second: callers commit an alert together with its outbox rows; the Notifier
delivers them later, retries with backoff, and records each attempt. Only a channel id and a redacted
URL are stored; the real URL (which may carry tokens) is looked up from the settings at send time.

A delivery and its record cannot be one atomic step. The notifier commits a mark (`sending_at`) right
before each delivery and records the outcome right after, so the only ambiguous window is the delivery
itself. A watcher killed inside it leaves the mark behind; the next one sends the page again, at least
once rather than possibly never, with a line saying it may repeat one already received.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass, replace

from mlops_console.config import NotificationSettings, Settings
from mlops_console.core.secrets import MissingVariable, env_values, redact_url, scrub, url_secrets
from mlops_console.core.store import Notification, OutboxMessage, Store

log = logging.getLogger(__name__)
redact = redact_url

BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
STORE_WARN_EVERY = 30.0
"""While the store keeps failing, repeat the notifier's warning at most this often."""
POSSIBLE_REPEAT = (
    "Possible repeat: the watcher sending this page stopped before it could record whether it arrived, "
    "so it is sent again. If you already received it, this is the same page."
)
"""Added to a page whose earlier send was cut off (the watcher was killed mid-delivery)."""


def channel_id(template: str) -> str:
    """A channel's id: a hash of its URL as written in the config (`${VAR}` unexpanded)."""
    return hashlib.sha256(template.encode()).hexdigest()[:16]


def outbox_messages(
    settings: Settings,
    *,
    endpoint: str,
    severity: str,
    kind: str,
    title: str,
    body: str,
    escalated: Collection[str] = (),
) -> list[OutboxMessage]:
    """One pending notification per channel that routes this endpoint and severity. An escalation
    channel (`after`) hears only about alerts escalated to it (`escalated`: their channel ids). A test
    page goes to every channel."""
    return [
        OutboxMessage(
            kind=kind,
            channel=channel_id(n.template),
            target=redact(n.template),
            severity=severity,
            title=title,
            body=body,
        )
        for n in settings.notifications
        if kind == "test"
        or (n.routes(endpoint, severity) and (not n.escalates or channel_id(n.template) in escalated))
    ]


def _notify_type(severity: str, kind: str) -> str:
    if kind == "resolved":
        return "success"
    return {"critical": "failure", "warning": "warning"}.get(severity, "info")


@dataclass
class Delivery:
    ok: bool
    error: str | None
    duration_ms: float


def deliver(
    target: NotificationSettings | str, title: str, body: str, severity: str, kind: str, timeout: float
) -> Delivery:
    """Send one message to one channel (or apprise URL) (blocking) and say whether it got there.

    `${VAR}` references are expanded here, at the last moment; the error, which may quote the URL (an
    ntfy topic, a host), never shows its secret parts.
    """
    channel = target if isinstance(target, NotificationSettings) else NotificationSettings(url=target)
    try:
        url = channel.url
    except MissingVariable as exc:
        return Delivery(False, f"cannot resolve the URL: {exc}", 0.0)
    started = time.perf_counter()
    delivery = _deliver(url, title, body, severity, kind, timeout)
    delivery.duration_ms = (time.perf_counter() - started) * 1000
    if delivery.error:
        shown = scrub(delivery.error, env_values(channel.template))
        delivery.error = scrub(shown, [url, *url_secrets(url)])[:500]
    return delivery


def _deliver(url: str, title: str, body: str, severity: str, kind: str, timeout: float) -> Delivery:
    import apprise

    apobj = apprise.Apprise()
    if not apobj.add(url):
        return Delivery(False, "apprise does not understand this URL", 0.0)
    try:
        result = apobj.notify(
            body=body, title=title, notify_type=_notify_type(severity, kind), timeout=timeout
        )
    except Exception as exc:  # apprise plugins may raise on odd network errors
        return Delivery(False, f"{type(exc).__name__}: {exc}", 0.0)
    if result.status.name == "SUCCESS" or (result.success_count and not result.failed_count):
        return Delivery(True, None, 0.0)
    messages = [entry.message for r in result.results for entry in r.logs()]
    if result.timeout_count:
        messages.insert(0, "timed out")
    return Delivery(False, "; ".join(messages) or "delivery failed", 0.0)


def warm_up(channel: NotificationSettings) -> None:
    """Load apprise and the channel's plugin ahead of a delivery (seconds on a busy host, the first time),
    so the window between marking a page as being sent and recording it holds the delivery alone."""
    import apprise

    with contextlib.suppress(Exception):  # a bad URL or a missing variable is reported by the delivery
        apprise.Apprise().add(channel.url)


def backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(0, attempt - 1))


class Notifier:
    """Drains the outbox of one store. Runs as an asyncio task beside the probes, never blocking them."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        poll: float = 1.0,
        outcomes: collections.Counter[tuple[str, bool]] | None = None,
    ) -> None:
        self.settings = settings
        self.outcomes: collections.Counter[tuple[str, bool]] = (
            collections.Counter() if outcomes is None else outcomes
        )
        """Delivery attempts by `(channel as shown, delivered)`, for the watcher's own metrics."""
        self.store = store
        self.poll = poll
        self._wake = asyncio.Event()
        self._channels: dict[str, NotificationSettings] = {}
        for n in settings.notifications:
            self._channels[channel_id(n.template)] = n
            # Rows queued before ids were taken from the unexpanded URL carry the old id: deliver those too.
            with contextlib.suppress(MissingVariable):
                self._channels.setdefault(channel_id(n.url), n)
        self._warned_at = -STORE_WARN_EVERY
        self.identity = f"pid {os.getpid()} on {os.uname().nodename}"
        """Written into the rows this notifier is sending, so the timeline can say who stopped mid-send."""
        self._warm: set[str] = set()
        """Channels whose apprise plugin is loaded in this process."""
        self._inflight: set[asyncio.Future[None]] = set()
        self._unrecorded: dict[int, tuple[Notification, Delivery, float | None]] = {}
        """Deliveries made but not yet recorded (the store refused the write): recorded later, never
        sent again."""

    def wake(self) -> None:
        """New rows were committed: deliver now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            next_due = None
            # Cleared before the round, not after: a wake that lands while the round awaits the store
            # (rows committed after it read them) makes one more round at once, never waits a poll.
            self._wake.clear()
            try:
                await self.drain_once()
                next_due = await asyncio.to_thread(self.store.next_due_at, self._stale_after)
            except sqlite3.Error as exc:
                # The store refusing a read or a write is not a bug: outbox rows wait in the store.
                if time.monotonic() - self._warned_at >= STORE_WARN_EVERY:
                    self._warned_at = time.monotonic()
                    log.warning("notifier round failed: %s; retrying", exc, extra={"event": "store_error"})
            else:
                self._warned_at = -STORE_WARN_EVERY
            wait = self.poll if next_due is None else min(self.poll, max(0.0, next_due - time.time()))
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()

    @property
    def _stale_after(self) -> float:
        """A row marked as being sent longer ago than one delivery may take was abandoned by its sender
        (this notifier finishes and records its own sends before it looks again)."""
        return self.settings.notify.timeout

    async def drain_once(self) -> int:
        """Attempt every due notification once: one alert's pages to one channel in order, the rest in
        parallel. Returns the number attempted."""
        if self._inflight:
            # A round cancelled mid-delivery (engine stopping, lease lost) finishes and records first:
            # its rows are still pending in the store and would otherwise be sent a second time.
            await asyncio.wait(self._inflight)
        for row, delivery, retry_at in list(self._unrecorded.values()):
            await self._record(row, delivery, retry_at)
        # Only once every earlier delivery is recorded (else this raised): none of them is due again.
        due = await asyncio.to_thread(self.store.due_notifications, 50, self._stale_after)
        if due:
            # A firing page sent again after an interrupted send must still reach its channel before
            # the alert's resolve.
            queues: dict[tuple[object, ...], list[Notification]] = {}
            for row in sorted(due, key=lambda r: r.id):
                key = (row.alert_id, row.channel) if row.alert_id else ("row", row.id)
                queues.setdefault(key, []).append(row)
            attempts = [asyncio.ensure_future(self._attempt_in_order(rows)) for rows in queues.values()]
            self._inflight.update(attempts)
            for attempt in attempts:
                attempt.add_done_callback(self._inflight.discard)
            # Shielded: cancelling the round must not cut a delivery off from its record.
            results = await asyncio.shield(asyncio.gather(*attempts, return_exceptions=True))
            for result in results:
                if isinstance(result, BaseException):
                    raise result
        return len(due)

    async def _attempt_in_order(self, rows: list[Notification]) -> None:
        for row in rows:
            await self._attempt(row)

    async def _attempt(self, row: Notification) -> None:
        channel = self._channels.get(row.channel)
        if channel is None:
            delivery = Delivery(False, "channel no longer configured", 0.0)
            retry_at = None
        else:
            if row.channel not in self._warm:
                await asyncio.to_thread(warm_up, channel)
                self._warm.add(row.channel)
            try:
                marked = await asyncio.to_thread(self.store.mark_sending, row, self.identity)
            except sqlite3.Error as exc:
                # The store refuses writes: send anyway (a page is never held back by its bookkeeping);
                # the outcome is kept and recorded once the store takes writes again.
                log.warning("notification %s sent unmarked: %s", row.id, exc, extra={"event": "store_error"})
                marked = replace(row, interrupted=row.interrupted + (row.sending_at is not None))
            if marked is None:
                return  # silenced, sent or marked by someone else meanwhile
            row = marked
            body = row.body + ("\n" + POSSIBLE_REPEAT if row.interrupted else "")
            delivery = await asyncio.to_thread(
                deliver,
                channel,
                row.title,
                body,
                row.severity,
                row.kind,
                self.settings.notify.timeout,
            )
            attempt = row.attempts + 1
            give_up = delivery.ok or attempt >= self.settings.notify.max_attempts
            retry_at = None if give_up else time.time() + backoff(attempt)
            self.outcomes[(row.target, delivery.ok)] += 1
        level = logging.INFO if delivery.ok else logging.WARNING
        log.log(
            level,
            "notification %s to %s: %s%s",
            row.id,
            row.target,
            "delivered" if delivery.ok else delivery.error,
            " (sent again after an interrupted send: a possible repeat)" if row.interrupted else "",
        )
        self._unrecorded[row.id] = (row, delivery, retry_at)
        await self._record(row, delivery, retry_at)

    async def _record(self, row: Notification, delivery: Delivery, retry_at: float | None) -> None:
        await asyncio.to_thread(
            self.store.record_delivery, row, delivery.ok, delivery.duration_ms, delivery.error, retry_at
        )
        del self._unrecorded[row.id]
