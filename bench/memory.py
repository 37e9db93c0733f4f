"""Scenario 6 worker: 1000 endpoints' series fed the equivalent of 24 h of samples; RSS must level off.

`python -m bench.memory --endpoints 1000 --hours 24` prints one JSON line. Each endpoint gets the
engine's own state (`mlops_console.core.endpoint_state.EndpointState`: series, adapter); every simulated
second adds one probe (1 in 50 failed) and one metrics scrape with a 12-bucket histogram, exactly as
a 1 s probe + scrape interval would. Every simulated hour the engine's per-probe snapshot refresh
runs once per endpoint (so snapshot-held lists are counted too) and RSS is sampled.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from pathlib import Path

import psutil

from bench.common import emit

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="wall-time bound")
    args = parser.parse_args()

    from mlops_console.config import parse_settings
    from mlops_console.core.adapters import ProbeResult
    from mlops_console.core.engine import Engine
    from mlops_console.core.series import MetricsSample
    from mlops_console.core.store import Store

    proc = psutil.Process()
    rss_start = proc.memory_info().rss
    tmp = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    settings = parse_settings(
        {
            "store": {"path": str(tmp / "c.db")},
            "endpoints": [
                {
                    "name": f"e{i}",
                    "url": "http://127.0.0.1:9",
                    "adapter": "generic",
                    "interval": 1.0,
                    "metrics_url": "http://127.0.0.1:9/metrics",
                }
                for i in range(args.endpoints)
            ],
        }
    )
    engine = Engine(settings, Store(settings.store.path))
    states = list(engine.endpoints.values())
    t0 = time.time() - args.hours * 3600
    seconds = int(args.hours * 3600)
    rss_series: list[tuple[float, float]] = [(0.0, proc.memory_info().rss / 2**20)]
    started = time.monotonic()
    fed_seconds = 0
    requests = [0.0] * len(states)
    add_probe = [state.series.add_probe for state in states]
    latencies = [0.004 + (i % 7) * 0.001 for i in range(len(states))]
    counts = [0.0] * len(BOUNDS)
    for second in range(seconds):
        now = t0 + second
        failing = second % 50
        for i, add in enumerate(add_probe):
            add(now, None if i % 50 == failing else latencies[i])
        if second % 5 == 0:  # scrapes in between only replace the newest kept sample
            for i, state in enumerate(states):
                total = requests[i] = requests[i] + 50.0
                buckets = tuple((b, total * min(1.0, 0.5 + k * 0.05)) for k, b in enumerate(BOUNDS))
                state.series.add_metrics(
                    MetricsSample(at=now, requests=total, errors=total * 0.01, buckets=buckets)
                )
        fed_seconds = second + 1
        if second % 3600 == 3599:
            for state in states:
                state.record(ProbeResult(ok=True, latency=0.005, status=200), now)
                state.snapshot()
            gc.collect()
            rss_series.append((fed_seconds / 3600, proc.memory_info().rss / 2**20))
        if time.monotonic() - started > args.max_seconds:
            break
    del counts
    hours_fed = fed_seconds / 3600
    rss = [r for _, r in rss_series]
    half = len(rss) // 2
    # Levelled off: the last half of the run grew by less than 2% of the final RSS.
    growth_last_half = rss[-1] - rss[half] if len(rss) > 2 else None
    emit(
        {
            "endpoints": args.endpoints,
            "hours_fed": round(hours_fed, 2),
            "samples_fed": fed_seconds * args.endpoints,
            "feed_seconds": round(time.monotonic() - started, 1),
            "rss_start_mb": rss_start / 2**20,
            "rss_final_mb": rss[-1],
            "rss_peak_mb": max(rss),
            "rss_growth_last_half_mb": growth_last_half,
            "levelled_off": growth_last_half is not None and growth_last_half < 0.02 * rss[-1],
            "rss_by_hour": [(round(h, 2), round(r, 1)) for h, r in rss_series],
        }
    )


if __name__ == "__main__":
    main()
