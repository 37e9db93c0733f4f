"""Scenario 4 worker: ingest alert events into the store, then time the two console queries.

`python -m bench.alert_store --events N` prints one JSON line. Paths measured:
- `api`: the per-operation Store API the engine uses (open_alert / add_event / acknowledge /
  resolve_alert: one transaction each), on a sample;
- `bulk`: `Store.bulk_events` (one transaction per 10,000 rows), used to load all N events;
- baseline: plain sqlite3 executemany into the same schema in a fresh file.
Then `alerts list` (latest 100 firing, `Store.list_alerts`) and one alert's timeline
(`Store.events`), p50/p95 over repeated calls at N rows.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, pct

KINDS_AFTER_FIRE = ["notified", "notified", "reminder", "notified", "acknowledged", "notify_failed"]
EVENTS_PER_ALERT = 8  # fired, notified..., acknowledged, resolved: the mix of a typical incident
FIRING_SHARE = 0.002  # alerts still firing at the end (the rest resolved)
BATCH = 10_000


def generate(n_events: int, t0: float):  # type: ignore[no-untyped-def]
    """Yields (alerts batch, events batch) with a realistic mix, in time order."""
    rng = random.Random(42)
    alerts: list[tuple[Any, ...]] = []
    events: list[tuple[Any, ...]] = []
    alert_id = 0
    at = t0
    produced = 0
    while produced < n_events:
        alert_id += 1
        at += rng.expovariate(1 / 30.0)
        endpoint = f"ep-{rng.randrange(200)}"
        rule = rng.choice(["down", "latency_p95", "error_ratio", "invalid_prediction", "version_mismatch"])
        firing = rng.random() < FIRING_SHARE
        count = min(n_events - produced, rng.randint(EVENTS_PER_ALERT - 4, EVENTS_PER_ALERT + 4))
        resolved_at = None if firing else at + 60 + rng.random() * 3600
        alerts.append(
            (
                alert_id,
                f"{rule}:{endpoint}",
                rule,
                endpoint,
                "m",
                "3",
                "critical",
                "firing" if firing else "resolved",
                f"{endpoint} {rule} fired",
                1.0,
                0.5,
                at,
                resolved_at,
                at,
            )
        )
        events.append((alert_id, at, "fired", None, None, json.dumps({"value": 1.0})))
        for k in range(count - 2):
            kind = KINDS_AFTER_FIRE[k % len(KINDS_AFTER_FIRE)]
            events.append(
                (
                    alert_id,
                    at + k + 1,
                    kind,
                    "json://****",
                    None,
                    json.dumps({"notification": alert_id * 3 + k, "kind": "firing", "attempt": 1}),
                )
            )
        if count >= 2:
            events.append(
                (
                    alert_id,
                    resolved_at or at + count,
                    "resolved" if not firing else "state_change",
                    None,
                    "recovered",
                    None,
                )
            )
        produced += max(count, 1)
        if len(events) >= BATCH:
            yield alerts, events
            alerts, events = [], []
    if events or alerts:
        yield alerts, events


def ingest_api(path: Path, n_events: int) -> dict[str, Any]:
    """The per-operation API (one transaction per call), on a sample."""
    from mlops_console.core.store import NewAlert, OutboxMessage, Store

    store = Store(path)
    notes = [
        OutboxMessage(
            kind="firing", channel="c", target="json://****", severity="critical", title="t", body="b"
        )
    ]
    started, events = time.perf_counter(), 0
    i = 0
    while events < n_events:
        i += 1
        alert_id = store.open_alert(
            NewAlert(
                fingerprint=f"down:ep{i % 200}",
                rule="down",
                endpoint=f"ep{i % 200}",
                model="m",
                version="1",
                severity="critical",
                summary="down",
                value=2.0,
                threshold=2.0,
                started_at=time.time(),
            ),
            notes,
        )
        store.add_event(alert_id, "notified", actor="json://****", data={"notification": i})
        store.add_event(alert_id, "notified", actor="json://****", data={"notification": i})
        store.acknowledge(alert_id, "bench", "looking")
        store.resolve_alert(alert_id, notes, note="recovered")
        events += 5
    elapsed = time.perf_counter() - started
    store.close()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


def ingest_bulk(path: Path, n_events: int, t0: float) -> dict[str, Any]:
    from mlops_console.core.store import Store

    store = Store(path)
    started, events, alerts = time.perf_counter(), 0, 0
    for alert_rows, event_rows in generate(n_events, t0):
        store.bulk_events(event_rows, alert_rows)
        events += len(event_rows)
        alerts += len(alert_rows)
    elapsed = time.perf_counter() - started
    store.close()
    return {"events": events, "alerts": alerts, "seconds": elapsed, "events_per_s": events / elapsed}


def ingest_sqlite(path: Path, n_events: int, t0: float) -> dict[str, Any]:
    """Baseline: plain sqlite3 executemany into the same schema (same pragmas, same batches)."""
    from mlops_console.core.store import Store

    Store(path).close()  # the schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started, events = time.perf_counter(), 0
    for alert_rows, event_rows in generate(n_events, t0):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO alerts (id, fingerprint, rule, endpoint, model, version, severity, state, "
            "summary, value, threshold, started_at, resolved_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            alert_rows,
        )
        conn.executemany(
            "INSERT INTO alert_events (alert_id, at, kind, actor, note, data) VALUES (?, ?, ?, ?, ?, ?)",
            event_rows,
        )
        conn.execute("COMMIT")
        events += len(event_rows)
    elapsed = time.perf_counter() - started
    conn.close()
    return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}


def queries(path: Path, repeats: int) -> dict[str, Any]:
    from mlops_console.core.store import Store

    store = Store(path)
    max_id = store.query("SELECT max(id) AS n FROM alerts")[0]["n"]
    rng = random.Random(7)
    store.list_alerts("firing", limit=100)  # warm the page cache once, as a running console would
    list_times, timeline_times = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        rows = store.list_alerts("firing", limit=100)
        list_times.append(time.perf_counter() - t)
        alert_id = rng.randint(1, max_id)
        t = time.perf_counter()
        store.events(alert_id)
        timeline_times.append(time.perf_counter() - t)
    plan = [
        r["detail"]
        for r in store.query(
            "EXPLAIN QUERY PLAN SELECT * FROM alerts WHERE state=? "
            "ORDER BY started_at DESC, id DESC LIMIT 100",
            ["firing"],
        )
    ]
    return {
        "firing_rows": len(rows),
        "list_p50_ms": pct(list_times, 50) * 1000,
        "list_p95_ms": pct(list_times, 95) * 1000,
        "timeline_p50_ms": pct(timeline_times, 50) * 1000,
        "timeline_p95_ms": pct(timeline_times, 95) * 1000,
        "list_plan": plan,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--api-events", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    t0 = time.time() - 86400 * 365
    api = ingest_api(tmp / "api.db", args.api_events)
    baseline = ingest_sqlite(tmp / "baseline.db", args.events, t0)
    bulk = ingest_bulk(tmp / "store.db", args.events, t0)
    result = {
        "events": bulk["events"],
        "alerts": bulk["alerts"],
        "bulk_events_per_s": bulk["events_per_s"],
        "api_events_per_s": api["events_per_s"],
        "sqlite_events_per_s": baseline["events_per_s"],
        "bulk_vs_sqlite": bulk["events_per_s"] / baseline["events_per_s"],
        **queries(tmp / "store.db", args.repeats),
        "db_mb": (tmp / "store.db").stat().st_size / 2**20,
    }
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()
    emit(result)


if __name__ == "__main__":
    main()
