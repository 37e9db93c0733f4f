"""A short soak (bench/soak.py): real `watch` processes through a kill -9 restart, a locked store and a
full disk during outages; every incident pages exactly once and resolves exactly once. The longer run
(`python -m bench.soak`) adds SIGINT restarts, kills before the page and lease takeovers.

The soak kills a watcher once its page is recorded. A kill between a delivery and its record is the
one window where exactly once cannot hold: the second test kills the watcher there, deterministically
(the pager itself kills it on receiving the page), and checks the page is sent again once, marked as a
possible repeat, and that the resolve still goes out once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.soak import _wait_up, run
from mlops_console.core.notifier import POSSIBLE_REPEAT
from tests._loopback import FaultServer, Sink, wait_for


def test_every_incident_pages_once_and_resolves_once_through_restarts_and_store_faults(
    tmp_path: Path,
) -> None:
    plans = ("kill9", "lock", "disk_full")
    report = run(cycles=len(plans), endpoints=len(plans), plans=plans, workdir=tmp_path, store_fault=11.0)
    summary = {
        k: report[k]
        for k in ("incidents", "pages", "resolves", "duplicates", "missing", "possible_repeats", "problems")
    }
    assert summary == {
        "incidents": 3,
        "pages": 3,
        "resolves": 3,
        "duplicates": 0,
        "missing": 0,
        "possible_repeats": 0,
        "problems": [],
    }, report
    assert report["pages_in_order"] and report["flapping_pages"] == 0, report
    assert report["alerts_in_store"] == 3 and report["alerts_not_resolved"] == 0, report
    assert report["kill9"] == 1 and report["clean_exits_nonzero"] == 0, report
    assert report["ok"], report


def _watch(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mlops_console", "--config", str(config), "watch", "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def _query(store: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def test_watcher_killed_between_delivery_and_record_pages_again_once_marked_as_a_possible_repeat(
    tmp_path: Path,
) -> None:
    server = FaultServer().start()
    watchers: list[subprocess.Popen[bytes]] = []

    def kill_the_sender(message: dict[str, Any]) -> None:
        # The page has reached the pager; its sender dies before it can hear so, let alone record it.
        if message["title"].startswith("[FIRING]") and watchers[0].poll() is None:
            watchers[0].send_signal(signal.SIGKILL)
            watchers[0].wait(10)

    sink = Sink(on_receive=kill_the_sender).start()
    store = tmp_path / "console.db"
    config = tmp_path / "console.toml"
    config.write_text(
        f'[store]\npath = "{store}"\n\n[notify]\ntimeout = 2\n\n'
        f'[[endpoints]]\nname = "ep"\nurl = "{server.url}"\ninterval = 0.5\ntimeout = 0.5\n'
        'payload = \'{"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}\'\n\n'
        f'[[notifications]]\nurl = "{sink.url}"\n'
    )
    try:
        watchers.append(_watch(config, tmp_path / "watch-0.log"))
        _wait_up(store, "ep")
        server.faults.mode = "error"
        wait_for(lambda: watchers[0].poll() is not None, timeout=60, what="first watcher killed by the page")
        assert watchers[0].returncode == -signal.SIGKILL
        # Delivered, and in the store still marked as being sent by the dead watcher, with no record.
        [firing] = _query(store, "SELECT * FROM notifications")
        assert (firing["kind"], firing["status"], firing["attempts"]) == ("firing", "pending", 0)
        assert firing["sending_at"] is not None and f"pid {watchers[0].pid} " in firing["sending_by"]
        assert _query(store, "SELECT * FROM deliveries") == []

        watchers.append(_watch(config, tmp_path / "watch-1.log"))
        wait_for(lambda: len(sink.received) == 2, timeout=60, what="the page sent again by the next watcher")
        server.faults.mode = "ok"
        wait_for(lambda: len(sink.received) == 3, timeout=60, what="the resolve")
        watchers[1].send_signal(signal.SIGTERM)
        assert watchers[1].wait(30) == 0
    finally:
        for proc in watchers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        sink.stop()
        server.stop()

    titles = [m["title"] for m in sink.received]
    assert titles == ["[FIRING] ep: endpoint down"] * 2 + ["[RESOLVED] ep: endpoint down"]
    first, again, resolved = (m["message"] for m in sink.received)
    assert POSSIBLE_REPEAT not in first and POSSIBLE_REPEAT in again and POSSIBLE_REPEAT not in resolved
    assert again.replace("\n" + POSSIBLE_REPEAT, "") == first

    [alert] = _query(store, "SELECT * FROM alerts")
    assert alert["state"] == "resolved"
    rows = _query(store, "SELECT * FROM notifications ORDER BY id")
    assert [(n["kind"], n["status"], n["attempts"], n["interrupted"]) for n in rows] == [
        ("firing", "sent", 1, 1),
        ("resolved", "sent", 1, 0),
    ]
    assert all(n["sending_at"] is None and n["sending_by"] is None for n in rows)
    assert [d["ok"] for d in _query(store, "SELECT * FROM deliveries ORDER BY id")] == [1, 1]
    events = _query(store, f"SELECT * FROM alert_events WHERE alert_id={alert['id']} ORDER BY at, id")
    kinds = [e["kind"] for e in events]
    assert kinds == ["fired", "notify_interrupted", "notified", "resolved", "notified"], kinds
    interrupted = events[1]
    assert f"pid {watchers[0].pid} " in interrupted["note"] and "possible repeat" in interrupted["note"]
    assert '"possible_repeat": true' in events[2]["data"]
