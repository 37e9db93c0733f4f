"""The status rows of a Prometheus-read fleet: the CPU one evaluation round's rows and rollups take.

N endpoints read from Prometheus (no Prometheus runs: each round's figures are put in place directly,
a rate and latencies varying a little per endpoint), a real store; every round, the figures of every
endpoint, then the status pass over all its slices as housekeeping runs them (`write_status`): rows
built on the loop, encoded and upserted in the store's thread. `--full` starts every endpoint with the
histories of an engine that has run for 15 minutes (60 throughput points, 20 medians), which the
90 s `prometheus_fleet` bench never reaches. Reports the process CPU per round of the status pass,
and as the same-run baseline, of putting the round's figures in place.

    python -m bench.status_rows --endpoints 10000 --rounds 12 --full
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any


async def _rounds(n: int, rounds: int, full: bool, root: Path) -> dict[str, Any]:
    from mlops_console.config import parse_settings
    from mlops_console.core.endpoint_state import PromFigures
    from mlops_console.core.engine import Engine
    from mlops_console.core.housekeeping import STATUS_SLICES, write_status
    from mlops_console.core.packed import PackedFloats
    from mlops_console.core.store import Store

    text = (
        f'[store]\npath = "{root / "console.db"}"\n[prometheus]\nurl = "http://127.0.0.1:9"\n'
        'interval = "15s"\ngroup_by = "endpoint"\ndefault_source = "prometheus"\n'
    )
    text += "".join(
        f'[[endpoints]]\nname = "e{i}"\nurl = "http://127.0.0.1:9"\nprometheus_id = "e{i}"\n'
        for i in range(n)
    )
    settings = parse_settings(tomllib.loads(text))
    engine = Engine(settings, Store(settings.store.path))
    states = list(engine.endpoints.values())
    rnd = random.Random(1)
    start = time.time()
    if full:
        for i, state in enumerate(states):
            for k in range(60):
                state.series.rps_history.append(
                    (start - 15 * (60 - k), (1 + i % 5) * (1 + rnd.random() / 100))
                )
            state.prom_latencies = PackedFloats(round(0.005 + rnd.random() / 1000, 6) for _ in range(20))
    figures, status = [], []
    for r in range(rounds):
        at = start + 15 * r
        cpu = time.process_time()
        for i, state in enumerate(states):
            rate = (1 + i % 5) * (1 + rnd.random() / 100)
            p50 = 0.005 + rnd.random() / 1000
            state.set_prometheus(
                PromFigures(at, rate, 0.0099 + rnd.random() / 10_000, p50, 0.0095, 0.0099, 60.0)
            )
        figures.append(time.process_time() - cpu)
        cpu = time.process_time()
        for k in range(STATUS_SLICES):
            await write_status(engine, at, part=(k, STATUS_SLICES))
        status.append(time.process_time() - cpu)
    row = engine.store.read_status()[0]
    steady = slice(rounds // 3, None)  # the first rounds warm the store's pages and the allocator
    return {
        "endpoints": n,
        "rounds": rounds,
        "histories": [len(row["rps_history"]), len(row["latency_history"])],
        "status_cpu_s_per_round": round(sum(status[steady]) / len(status[steady]), 3),
        "baseline_figures_cpu_s_per_round": round(sum(figures[steady]) / len(figures[steady]), 3),
        "status_cpu_share_of_core_at_15s": round(sum(status[steady]) / len(status[steady]) / 15.0, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--full", action="store_true", help="start with 15 minutes of history")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-status-"))
    try:
        print(json.dumps(asyncio.run(_rounds(args.endpoints, args.rounds, args.full, root)), indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
