"""An alert survives a store that refuses writes: kept, retried in order, paged directly if the store
stays unwritable, and recorded (without a second page) once it accepts writes again."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core import writer as writer_module
from mlops_console.core.alerts import AlertWrite, open_external_alert
from mlops_console.core.engine import Engine
from mlops_console.core.notifier import Notifier
from mlops_console.core.store import Store
from tests._loopback import FaultServer, Sink, async_wait_for
from tests.test_engine_faults import make_settings


@pytest.fixture
async def engine(tmp_path: Path, server: FaultServer, sink: Sink) -> AsyncIterator[Engine]:
    settings = make_settings(tmp_path, server, sink)
    engine = Engine(settings, Store(settings.store.path))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await async_wait_for(lambda: engine.snapshot().endpoints[0].health == "up", what="endpoint up")
    yield engine
    stop.set()
    await task


def count(sink: Sink, prefix: str) -> int:
    return sum(t.startswith(prefix) for t in sink.titles())


async def set_read_only(engine: Engine, on: bool) -> None:
    """SQLite refuses every write on the engine's store connections ("attempt to write a readonly
    database"), as it does for a store file the watcher may not write."""

    def pragma() -> None:
        engine.store._conn().execute(f"PRAGMA query_only={int(on)}")

    loop = asyncio.get_running_loop()
    await engine._in_store(pragma)
    await loop.run_in_executor(engine.writer._pool, pragma)


async def test_unwritable_store_pages_directly_then_records_the_alert_once(
    engine: Engine, server: FaultServer, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "STORE_PAGE_AFTER", 2.0)
    await set_read_only(engine, True)
    server.faults.mode = "error"
    await async_wait_for(lambda: engine.writer.failing_since, what="the alert write refused")
    assert engine.health().state == "degraded" and "unwritable" in (engine.health().reason or "")
    await async_wait_for(lambda: count(sink, "[FIRING] ep: endpoint down"), what="direct page")
    page = next(m for m in sink.received if m["title"].startswith("[FIRING]"))
    assert "alert store is unwritable" in page["message"] and "read-only" in page["message"]
    server.faults.mode = "ok"
    await async_wait_for(lambda: len(engine.writer.queue) == 2, what="resolve queued behind the fire")
    await set_read_only(engine, False)
    await async_wait_for(lambda: not engine.writer.queue, what="queued writes recorded")
    await async_wait_for(lambda: count(sink, "[RESOLVED] ep"), what="resolve page")
    alerts = await asyncio.to_thread(engine.store.list_alerts)
    assert [(a.rule, a.state) for a in alerts] == [("down", "resolved")]
    kinds = [e.kind for e in await asyncio.to_thread(engine.store.events, alerts[0].id)]
    assert kinds[:2] == ["fired", "notified"] and "resolved" in kinds
    sent = await asyncio.to_thread(engine.store.notifications_for, alerts[0].id)
    assert [(n.kind, n.status) for n in sent] == [("firing", "sent"), ("resolved", "sent")]
    # Recorded as sent, the direct page is never in the notifier's due list.
    assert count(sink, "[FIRING]") == 1 and count(sink, "[RESOLVED]") == 1
    assert engine.health().state == "running"


async def test_store_locked_past_the_busy_timeout_keeps_the_alert(
    engine: Engine, server: FaultServer, sink: Sink
) -> None:
    path = engine.settings.store.path
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        release.wait(60)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        locked.wait(10)
        server.faults.mode = "error"
        await async_wait_for(lambda: engine.writer.failing_since, timeout=30, what="write failed on the lock")
        await async_wait_for(lambda: count(sink, "[FIRING] ep"), timeout=30, what="page while locked")
        assert await asyncio.to_thread(engine.store.list_alerts) == []
    finally:
        release.set()
        holder.join()
    await async_wait_for(lambda: not engine.writer.queue, timeout=30, what="alert written after the lock")
    alerts = await asyncio.to_thread(engine.store.list_alerts)
    assert [(a.rule, a.state) for a in alerts] == [("down", "firing")]
    sent = await asyncio.to_thread(engine.store.notifications_for, alerts[0].id)
    assert [(n.kind, n.status) for n in sent] == [("firing", "sent")]
    assert count(sink, "[FIRING]") == 1


async def test_delivery_recorded_after_the_store_comes_back_is_not_sent_twice(
    tmp_path: Path, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": sink.url}]}
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
        summary="x",
    )
    notifier = Notifier(settings, store, poll=0.05)
    conn = sqlite3.connect(settings.store.path, isolation_level=None)
    # Marking the page as being sent waits for the lock and fails; the page goes out anyway (unmarked),
    # and recording its delivery waits, then fails.
    conn.execute("BEGIN EXCLUSIVE")
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        await async_wait_for(lambda: sink.received, timeout=30, what="delivery while the store is locked")
        assert any("sent unmarked" in r.getMessage() for r in caplog.records)
        await async_wait_for(
            lambda: any("notifier round failed" in r.getMessage() for r in caplog.records),
            timeout=30,
            what="recording the delivery failed on the lock",
        )
        conn.execute("COMMIT")
        await async_wait_for(
            lambda: store.notifications_for(alert_id)[0].status == "sent", timeout=20, what="recorded"
        )
    finally:
        stop.set()
        await task
        conn.close()
    assert len(sink.received) == 1


async def test_stopping_mid_delivery_does_not_send_it_again(tmp_path: Path) -> None:
    """An engine stops (SIGINT, lease lost) while a page is on its way: the final flush must wait for
    it and record it, not send it a second time."""
    sink = Sink(delay=1.0).start()
    settings = parse_settings(
        {"store": {"path": str(tmp_path / "c.db")}, "notifications": [{"url": sink.url}]}
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
        summary="x",
    )
    notifier = Notifier(settings, store, poll=0.05)
    task = asyncio.create_task(notifier.run(asyncio.Event()))
    try:
        await async_wait_for(lambda: sink.attempts == 1, what="delivery under way")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await notifier.drain_once()  # what the engine's shutdown does
        await async_wait_for(lambda: store.notifications_for(alert_id)[0].status == "sent", what="recorded")
    finally:
        sink.stop()
    assert sink.attempts == 1 and len(sink.received) == 1


def test_no_direct_page_once_the_write_committed_its_outbox_rows() -> None:
    """The writer checks `claim_direct` on the event loop while the write commits on the store thread.
    Checked the moment the commit lets go of the write's lock, before the write is marked done, it must
    already refuse: the committed outbox rows page, and a direct page would be a second one."""
    answers: list[bool] = []

    class CheckOnRelease:
        """The write's lock; the moment the committing thread releases it, the writer checks."""

        def __init__(self) -> None:
            self.inner, self.checking = threading.Lock(), False

        def __enter__(self) -> None:
            self.inner.acquire()

        def __exit__(self, *exc: object) -> None:
            self.inner.release()
            if committed and not self.checking:
                self.checking = True
                answers.append(write.claim_direct())

    committed = False

    def commit(store: Store, write: AlertWrite) -> None:
        nonlocal committed
        write.with_direct([])  # inside the transaction, as store.open_alert calls it
        committed = True  # COMMIT went through

    write = AlertWrite("firing", "fp", 0.0, {}, commit)
    write._lock = CheckOnRelease()  # type: ignore[assignment]
    write(None)  # type: ignore[arg-type]
    assert answers == [False]
    assert write.done and not write.claim_direct()
