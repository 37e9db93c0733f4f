"""Alert writes in order: kept and retried while the store refuses them, paged directly if it stays so.

Store first, notify second holds while the store accepts writes. When it does not (a lock held past
the busy timeout, a full disk, a read-only or damaged file), the write stays queued and is retried
with backoff, and every later write waits behind it so the store sees them in order. Once a write
that pages has waited `STORE_PAGE_AFTER` seconds, its pages go straight through apprise, saying the
store is unwritable; when the write finally lands, they are recorded as sent and never sent again.

Writes run on a thread of their own, so they never queue behind the engine's other store calls, and
the bound is kept even while an attempt is blocked on a lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from mlops_console.config import NotificationSettings, Settings
from mlops_console.core.alerts import AlertWrite, DirectPageInFlight
from mlops_console.core.notifier import channel_id, deliver
from mlops_console.core.store import OutboxMessage, Store

log = logging.getLogger("mlops_console.writer")

STORE_PAGE_AFTER = 10.0
"""Seconds a paging write may wait for the store before its pages are sent directly."""
RETRY_MIN = 0.5
RETRY_MAX = 5.0
LOG_EVERY = 30.0
"""While the store stays unwritable, repeat the error at most this often."""
SILENCE_READ_TIMEOUT = 2.0
UNWRITABLE_NOTE = (
    "Sent directly: the alert store is unwritable ({error}). The alert is recorded, without paging "
    "again, once the store accepts writes."
)


class AlertWriter:
    """The engine's queue of alert writes. `run()` drains it; `submit()` adds to it from the loop."""

    def __init__(self, settings: Settings, store: Store, on_written: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.queue: deque[AlertWrite] = deque()
        self.failing_since: float | None = None
        """When the oldest unwritten write first failed; None while the store accepts writes."""
        self.error: str | None = None
        self._on_written = on_written
        self._wake = asyncio.Event()
        self._logged_at = 0.0
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alert-writes")
        self._attempt: asyncio.Future[None] | None = None
        self._channels: dict[str, NotificationSettings] = {
            channel_id(n.template): n for n in settings.notifications
        }

    def submit(self, writes: list[AlertWrite]) -> None:
        self.queue.extend(writes)
        self._wake.set()

    async def run(self) -> None:
        delay = RETRY_MIN
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if await self._write_head():
                delay = RETRY_MIN
                continue
            await self.page_due()
            await asyncio.sleep(max(0.05, min(delay, self._until_due())))
            delay = min(RETRY_MAX, delay * 2)

    async def _write_head(self) -> bool:
        """One attempt at the oldest queued write, paging directly meanwhile if it falls due."""
        write = self.queue[0]
        if self._attempt is None:  # else: an attempt from before a restart of this task still runs
            self._attempt = asyncio.get_running_loop().run_in_executor(self._pool, write, self.store)
        attempt = self._attempt
        while not (await asyncio.wait({attempt}, timeout=self._until_due()))[0]:
            await self.page_due()  # the attempt is blocked (a lock): keep the bound anyway
        self._attempt = None
        try:
            attempt.result()
        except DirectPageInFlight:
            return False
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc)
            return False
        except Exception:
            # Not the store: a bug in this write. Retrying cannot help, and keeping it would hold every
            # later alert behind it: page what it would have paged, drop it, and say so loudly.
            log.exception("alert write %s for %s failed; dropped", write.kind, write.alert.endpoint)
            self.queue.popleft()
            await self._page(write, "Sent directly: the alert could not be recorded (see the watcher's log).")
            return True
        self.queue.popleft()
        self._on_written()
        if self.failing_since is not None and not self.queue:
            log.warning(
                "alert store writable again after %.0f s; queued alert writes recorded",
                time.time() - self.failing_since,
                extra={"event": "store_writable"},
            )
            self.failing_since, self.error = None, None
        return True

    def _until_due(self) -> float:
        """Seconds until the next queued write's pages fall due (a day if none will)."""
        due = [w.created_at + STORE_PAGE_AFTER for w in self.queue if not w.direct_tried]
        return max(0.0, min(due) - time.time()) if due else 86400.0

    def _failed(self, exc: BaseException) -> None:
        now = time.time()
        self.error = str(exc) or type(exc).__name__
        first = self.failing_since is None
        if first:
            self.failing_since = now
        if first or now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            log.error(
                "alert store write failed (%s); %d alert writes kept and retried, paged directly if the "
                "store stays unwritable for %.0f s",
                self.error,
                len(self.queue),
                STORE_PAGE_AFTER,
                extra={"event": "store_unwritable"},
            )

    async def page_due(self, *, everything: bool = False) -> None:
        """Page directly for every queued write that has waited too long (or, at shutdown, all)."""
        now = time.time()
        for write in list(self.queue):
            if not everything and now - write.created_at < STORE_PAGE_AFTER:
                break  # the queue is in creation order: every later write is younger
            error = self.error or "no answer from the store"
            await self._page(write, UNWRITABLE_NOTE.format(error=error))

    async def _page(self, write: AlertWrite, note: str) -> None:
        write.direct_tried = True  # channels that fail are tried again at the retry cadence
        messages = write.direct_messages(self.settings, note)
        if not messages or await self._silenced(write.fingerprint) or not write.claim_direct():
            return
        try:
            await asyncio.gather(*(self._send(write, message) for message in messages))
        finally:
            write.release_direct()

    async def _send(self, write: AlertWrite, message: OutboxMessage) -> None:
        channel = self._channels.get(message.channel)
        if channel is None:
            return
        delivery = await asyncio.to_thread(
            deliver,
            channel,
            message.title,
            message.body,
            message.severity,
            message.kind,
            self.settings.notify.timeout,
        )
        if delivery.ok:
            write.direct[message.channel] = replace(
                message, delivered_at=time.time(), duration_ms=delivery.duration_ms
            )
        log.log(
            logging.WARNING if delivery.ok else logging.ERROR,
            "paged directly to %s: %s: %s",
            message.target,
            message.title,
            "delivered" if delivery.ok else delivery.error,
            extra={"event": "paged_directly", "endpoint": write.alert.endpoint},
        )

    async def _silenced(self, fingerprint: str) -> bool:
        """Whether a silence covers it; a store that cannot even be read counts as not silenced."""
        try:
            until = await asyncio.wait_for(
                asyncio.to_thread(self.store.silenced_until, fingerprint), SILENCE_READ_TIMEOUT
            )
        except Exception:
            return False
        return until is not None

    async def close(self, timeout: float) -> None:
        """At shutdown: try once more to write what is queued, else page it directly rather than lose it."""
        deadline = time.monotonic() + timeout
        try:
            while self.queue and time.monotonic() < deadline:
                remaining = deadline - time.monotonic()
                if not await asyncio.wait_for(self._write_head(), remaining):
                    break
        except TimeoutError:
            pass
        if self.queue:
            log.error(
                "stopping with %d alert writes the store refused (%s); paging them directly",
                len(self.queue),
                self.error,
                extra={"event": "store_unwritable"},
            )
            await self.page_due(everything=True)
        self._pool.shutdown(wait=False)
