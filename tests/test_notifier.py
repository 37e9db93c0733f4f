"""Store first, notify second: failing sinks are retried with backoff, every attempt is recorded,
nothing is lost and nothing is sent twice; secrets never reach the store."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core import notifier as notifier_module
from mlops_console.core.alerts import open_external_alert
from mlops_console.core.notifier import Notifier, redact
from mlops_console.core.store import Store
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
