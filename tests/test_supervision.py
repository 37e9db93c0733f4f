"""No engine task dies silently: failures are logged, restarted where safe, and a task that keeps
failing stops the engine (and `watch` exits non-zero); `status` shows a stalled watcher."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_console.core.engine import Engine, EngineFailed
from mlops_console.core.store import Store
from mlops_console.core.watcher_health import watcher_health
from tests._loopback import FaultServer, Sink, async_wait_for, wait_for
from tests.test_engine_faults import make_settings

CLI = [sys.executable, "-m", "mlops_console"]


def break_alerts_table(path: Path, broken: bool) -> None:
    """A damaged schema: reading open alerts (what a new leader does first) fails in SQLite."""
    conn = sqlite3.connect(path, isolation_level=None)
    if broken:
        conn.execute("ALTER TABLE alerts RENAME TO alerts_away")
    else:
        conn.execute("ALTER TABLE alerts_away RENAME TO alerts")
    conn.close()


async def test_failed_lease_loop_is_logged_and_restarted(
    tmp_path: Path, server: FaultServer, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, server, sink)
    store = Store(settings.store.path)
    break_alerts_table(settings.store.path, True)
    engine = Engine(settings, store)
    engine.supervisor.restart_min = 0.2
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:
        await async_wait_for(
            lambda: any(r.getMessage().startswith("engine task lease failed") for r in caplog.records),
            what="loud failure",
        )
        failure = next(r for r in caplog.records if r.getMessage().startswith("engine task lease failed"))
        assert (
            failure.levelno == logging.ERROR and failure.exc_info and "no such table" in failure.getMessage()
        )
        assert engine.snapshot().engine.state in ("degraded", "running")
        break_alerts_table(settings.store.path, False)
        await async_wait_for(lambda: engine.leader, timeout=20, what="leading after the restart")
        server.faults.mode = "error"
        await async_wait_for(lambda: any("[FIRING] ep" in t for t in sink.titles()), what="page")
        assert engine.snapshot().engine.state == "running"
    finally:
        stop.set()
        await task


async def test_task_that_keeps_failing_stops_the_engine(
    tmp_path: Path, server: FaultServer, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, server, sink)
    store = Store(settings.store.path)
    break_alerts_table(settings.store.path, True)
    engine = Engine(settings, store)
    engine.supervisor.restart_min = 0.05
    engine.supervisor.max_failures = 3
    with pytest.raises(EngineFailed, match="lease failed 3 times"):
        await asyncio.wait_for(engine.run(asyncio.Event()), 30)
    assert engine.health().state == "failed"
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)


def watch(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "--config", str(config), "watch", "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_config(tmp_path: Path, server: FaultServer, sink: Sink) -> Path:
    config = tmp_path / "console.toml"
    config.write_text(
        f"""
[store]
path = "{tmp_path / "console.db"}"

[[endpoints]]
name = "ep"
url = "{server.url}"
interval = 0.5
timeout = 1.0
payload = '{{"dataframe_split": {{"columns": ["a"], "data": [[1.0]]}}}}'

[[notifications]]
url = "{sink.url}"
"""
    )
    return config


def test_watch_exits_non_zero_when_a_task_keeps_failing(
    tmp_path: Path, server: FaultServer, sink: Sink
) -> None:
    config = write_config(tmp_path, server, sink)
    Store(tmp_path / "console.db")
    break_alerts_table(tmp_path / "console.db", True)
    proc = watch(config)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err[-2000:]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    failed = [e for e in events if e.get("event") == "task_failed"]
    assert len(failed) >= 4 and "no such table: alerts" in failed[0]["message"]
    assert any(e.get("event") == "engine_failed" and e["level"] == "critical" for e in events)


def status(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), "status"], capture_output=True, text=True, timeout=60
    )


def test_status_shows_a_stalled_watcher(tmp_path: Path, server: FaultServer, sink: Sink) -> None:
    config = write_config(tmp_path, server, sink)
    proc = watch(config)
    store = Store(tmp_path / "console.db")

    def state() -> str | None:
        health = watcher_health(store)
        return health.state if health else None

    try:
        wait_for(lambda: state() == "running", timeout=30, what="watcher running")
        assert "watcher: running" in status(config).stdout
        proc.send_signal(signal.SIGSTOP)  # hung: holds the lease, updates nothing
        wait_for(lambda: state() == "stalled", timeout=30, what="stalled watcher")
        stalled = status(config)
        assert stalled.returncode == 1, stalled.stdout
        line = next(line for line in stalled.stdout.splitlines() if line.startswith("watcher:"))
        assert line.startswith("watcher: stalled: ") and f"pid {proc.pid} on " in line, line
        proc.send_signal(signal.SIGCONT)
        wait_for(lambda: state() == "running", timeout=30, what="watcher running again")
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert watcher_health(store) is None, "a clean stop releases the lease: no watcher, nothing stalled"
