"""Scenario 5 worker: an endpoint fails at a random moment; time to the page and to the resolve.

`python -m bench.fault_page --trials 20 --interval 1.0` prints one JSON line. The real engine probes
one loopback FaultServer per trial (so repeated trials never make one alert flap) and notifies a real
apprise `json://` sink (tests/_loopback.py), which stamps each arrival. Per trial: wait until the
endpoint is up, sleep a random fraction of the interval, break it (HTTP 500), wait for the FIRING
message; heal it, wait for the RESOLVED message.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.common import emit, pct

PAYLOAD = {"dataframe_split": {"columns": ["a"], "data": [[1.0], [2.0]]}}


def arrived(sink: Any, since: int, prefix: str) -> list[dict[str, Any]]:
    """Messages the sink received after the first `since` whose title starts with `prefix`."""
    return [m for m in sink.received[since:] if str(m.get("title", "")).startswith(prefix)]


async def run(trials: int, interval: float, limit: float) -> dict[str, Any]:
    from mlops_console.config import parse_settings
    from mlops_console.core.engine import Engine
    from mlops_console.core.store import Store
    from tests._loopback import FaultServer, Sink

    servers = [FaultServer().start() for _ in range(trials)]
    sink = Sink().start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fault-"))
    settings = parse_settings(
        {
            "store": {"path": str(tmp / "console.db")},
            "endpoints": [
                {"name": f"ep{i}", "url": s.url, "interval": interval, "timeout": 2.0, "payload": PAYLOAD}
                for i, s in enumerate(servers)
            ],
            "notifications": [{"url": sink.url}],
        }
    )
    engine = Engine(settings, Store(settings.store.path))
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    rng = random.Random(5)
    pages: list[float] = []
    resolves: list[float] = []
    failures: list[str] = []

    async def wait_for(pred: Any, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred():
                return True
            await asyncio.sleep(0.01)
        return False

    started = time.monotonic()
    try:
        for i, server in enumerate(servers):
            if time.monotonic() - started > limit:
                failures.append(f"stopped after {i} trials (time limit)")
                break
            name = f"ep{i}"
            state = engine.endpoints[name]
            if not await wait_for(lambda state=state: state.health == "up", 15):
                failures.append(f"{name} never came up")
                continue
            await asyncio.sleep(rng.uniform(0, interval))
            seen = len(sink.received)
            broke = time.time()
            server.faults.mode = "error"
            firing = partial(arrived, sink, seen, f"[FIRING] {name}:")
            if not await wait_for(firing, 15):
                failures.append(f"{name}: no page")
                server.faults.mode = "ok"
                continue
            pages.append(firing()[0]["_at"] - broke)
            await asyncio.sleep(rng.uniform(0, interval))
            seen = len(sink.received)
            healed = time.time()
            server.faults.mode = "ok"
            resolved = partial(arrived, sink, seen, f"[RESOLVED] {name}:")
            if not await wait_for(resolved, 15):
                failures.append(f"{name}: no resolve")
                continue
            resolves.append(resolved()[0]["_at"] - healed)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        for server in servers:
            server.stop()
        sink.stop()
    bound = interval * 2 + 0.5
    return {
        "trials": len(pages),
        "interval_s": interval,
        "target_s": bound,
        "page_p50_s": pct(pages, 50),
        "page_p95_s": pct(pages, 95),
        "page_max_s": max(pages, default=None),
        "resolve_p50_s": pct(resolves, 50),
        "resolve_p95_s": pct(resolves, 95),
        "resolve_max_s": max(resolves, default=None),
        "failures": failures,
        "sink_titles_sample": [m.get("title") for m in sink.received[:2]],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=240.0)
    args = parser.parse_args()
    emit(asyncio.run(run(args.trials, args.interval, args.max_seconds)))


if __name__ == "__main__":
    main()
