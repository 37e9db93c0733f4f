"""Scenario 1 worker: probe N virtual endpoints at a fixed interval, one mode per process.

`python -m bench.engine_scale --mode engine|aiohttp|httpx --n N --duration S --port P`
prints one JSON line: probes done versus scheduled, schedule lag, CPU per 1000 probes, peak RSS.
Modes: `engine` is the product (mlops_console.core.engine.Engine with its store, rules, notifier and
housekeeping); `aiohttp` and `httpx` are bare asyncio loops sending the same requests (baselines).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RssSampler, emit, pct

WARMUP = 2.0  # seconds before counting (connections opened, first probes spread); --warmup
TUNE_GC = True
"""The garbage collector set as `watch` sets it (`--default-gc`: as CPython starts)."""


async def bare_loop(mode: str, n: int, interval: float, duration: float, port: int) -> dict[str, Any]:
    """The same schedule as the engine (spread start, no overlap, skip missed slots), nothing else."""
    base = f"http://127.0.0.1:{port}"
    done = 0
    lags: list[float] = []
    counting = False
    loop = asyncio.get_running_loop()

    if mode == "aiohttp":
        import aiohttp

        client: Any = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))

        async def request(url: str) -> None:
            async with client.get(url, timeout=aiohttp.ClientTimeout(total=2.0)) as response:
                await response.read()
    else:
        import httpx

        client = httpx.AsyncClient(timeout=2.0)

        async def request(url: str) -> None:
            response = await client.get(url)
            response.read()

    async def one(i: int) -> None:
        nonlocal done
        url = f"{base}/e{i}"
        next_at = loop.time() + random.uniform(0, min(interval, 1.0))
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if counting:
                lags.append(loop.time() - next_at)
            with contextlib.suppress(Exception):
                await request(url)
            if counting:
                done += 1
            next_at += interval
            now = loop.time()
            if next_at < now:
                next_at += (int((now - next_at) // interval) + 1) * interval

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(WARMUP)
    counting = True
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(duration)
    counting = False
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    probes = done
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await client.aclose() if mode == "httpx" else await client.close()
    return {"probes": probes, "lags": lags, "cpu": cpu, "wall": wall}


async def engine_loop(n: int, interval: float, duration: float, port: int) -> dict[str, Any]:
    from mlops_console.config import parse_settings
    from mlops_console.core.engine import Engine
    from mlops_console.core.gc_tuning import freeze_when, settled
    from mlops_console.core.gc_tuning import tune as tune_gc
    from mlops_console.core.store import Store

    tmp = tempfile.mkdtemp(prefix="bench-engine-")
    settings = parse_settings(
        {
            "store": {"path": str(Path(tmp) / "console.db")},
            "endpoints": [
                {
                    "name": f"e{i}",
                    "url": f"http://127.0.0.1:{port}",
                    "adapter": "generic",
                    "path": f"/e{i}",
                    "interval": interval,
                    "timeout": 2.0,
                }
                for i in range(n)
            ],
        }
    )
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    if TUNE_GC:  # as `watch` does
        tune_gc()
        freezer = asyncio.create_task(freeze_when(lambda: settled(engine)))
    deadline = time.monotonic() + 15
    while not engine.leader and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(WARMUP)
    probes0, lag0 = engine.stats.probes, len(engine.stats.lags)
    cpu0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(duration)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    probes = engine.stats.probes - probes0
    lags = list(engine.stats.lags)[lag0:]
    stop.set()
    await asyncio.wait_for(task, 20)
    if TUNE_GC:
        freezer.cancel()
    return {"probes": probes, "lags": lags, "cpu": cpu, "wall": wall}


def main() -> None:
    global WARMUP, TUNE_GC
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["engine", "aiohttp", "httpx"], required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--warmup", type=float, default=WARMUP)
    parser.add_argument("--default-gc", action="store_true")
    args = parser.parse_args()
    WARMUP = args.warmup
    TUNE_GC = not args.default_gc
    rss = RssSampler()
    if args.mode == "engine":
        out = asyncio.run(engine_loop(args.n, args.interval, args.duration, args.port))
    else:
        out = asyncio.run(bare_loop(args.mode, args.n, args.interval, args.duration, args.port))
    peak = rss.stop()
    scheduled = args.n * out["wall"] / args.interval
    lags = out["lags"]
    emit(
        {
            "mode": args.mode,
            "n": args.n,
            "duration_s": round(out["wall"], 2),
            "scheduled_per_s": args.n / args.interval,
            "probes_per_s": out["probes"] / out["wall"],
            "done_ratio": out["probes"] / scheduled if scheduled else None,
            "lag_p50_ms": (pct(lags, 50) or 0) * 1000,
            "lag_p99_ms": (pct(lags, 99) or 0) * 1000,
            "lag_max_ms": max(lags, default=0) * 1000,
            "cpu_s": out["cpu"],
            "cpu_s_per_1000": out["cpu"] / out["probes"] * 1000 if out["probes"] else None,
            "cpu_share": out["cpu"] / out["wall"],
            "peak_rss_mb": peak / 2**20,
        }
    )


if __name__ == "__main__":
    main()
