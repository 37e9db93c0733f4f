"""Scenario 7 worker: drift scoring of 20 numeric features over a 10,000-row window.

`python -m bench.quality_score --rows 10000 --features 20 --repeats 30` prints one JSON line:
- `evaluate`: `VersionWindow.evaluate` (gathering the window's columns from its chunks, scoring every
  feature and the prediction, input and prediction checks, aggregates), what the engine will call;
- `score`: `drift.score_window` alone on ready columns;
- baseline: bare numpy/scipy computing the same statistics the textbook way on the raw samples
  (`np.histogram` on the reference's bin edges for PSI, `scipy.stats.wasserstein_distance` and
  `scipy.stats.ks_2samp` on all reference and current values);
- `add_per_1000_rows`: folding 1,000 logged rows into the window (the tailing path's share).
CPU time (`process_time`) is reported beside wall time: on a shared machine the wall clock also
measures the neighbours.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import emit, pct

T0 = 1_795_000_000.0


def timed(fn: Callable[[], Any], repeats: int) -> dict[str, float | None]:
    fn()  # warm caches (chi-square quantiles, imports)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return {
        "wall_p50_ms": statistics.median(walls),
        "wall_p95_ms": pct(walls, 95),
        "cpu_p50_ms": statistics.median(cpus),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()

    from scipy.stats import ks_2samp, wasserstein_distance

    from mlops_console.core.quality.drift import score_window
    from mlops_console.core.quality.records import InferenceRecord
    from mlops_console.core.quality.reference import NumericProfile, profile_columns
    from mlops_console.core.quality.schema import Signature
    from mlops_console.core.quality.window import QualityOptions, VersionWindow

    rng = np.random.default_rng(7)
    names = [f"f{i:02d}" for i in range(args.features)]
    scales = rng.uniform(0.5, 20.0, args.features)
    ref_raw = {n: rng.normal(0.0, s, args.reference_rows) for n, s in zip(names, scales, strict=True)}
    reference = profile_columns(ref_raw, source="bench")
    signature = Signature.from_columns(dict.fromkeys(names, "numeric"), source="bench")
    # Half the features shifted a little, so the scores are not all trivially zero.
    cur = {
        n: rng.normal(0.2 * (i % 2), s, args.rows) for i, (n, s) in enumerate(zip(names, scales, strict=True))
    }
    predictions = rng.integers(0, 3, args.rows)

    records = [
        InferenceRecord(
            T0 + i * 0.06, {n: float(cur[n][i]) for n in names}, int(predictions[i]), "bench", "1"
        )
        for i in range(args.rows)
    ]
    window = VersionWindow("bench", "1", QualityOptions(window=3600.0), signature)
    started = time.process_time()
    for start in range(0, args.rows, 1000):
        window.add(records[start : start + 1000])
    add_cpu_ms = (time.process_time() - started) * 1000 / (args.rows / 1000)
    end = records[-1].time
    evaluated = window.evaluate(reference, end)
    assert evaluated.rows == args.rows and evaluated.drift is not None

    columns: dict[str, Any] = {n: cur[n] for n in names}

    def baseline() -> None:
        for n in names:
            profile = reference.get(n)
            assert isinstance(profile, NumericProfile)
            edges = np.concatenate(([-np.inf], profile.edges, [np.inf]))
            counts, _ = np.histogram(cur[n], bins=edges)
            ref = np.asarray(profile.proportions) + 1e-6
            share = counts / counts.sum() + 1e-6
            _ = float(np.sum((share - ref) * np.log(share / ref)))
            _ = wasserstein_distance(ref_raw[n], cur[n]) / ref_raw[n].std()
            _ = ks_2samp(ref_raw[n], cur[n]).statistic

    emit(
        {
            "rows": args.rows,
            "features": args.features,
            "reference_rows": args.reference_rows,
            "repeats": args.repeats,
            "evaluate": timed(lambda: window.evaluate(reference, end), args.repeats),
            "score": timed(lambda: score_window(reference, columns), args.repeats),
            "baseline": timed(baseline, args.repeats),
            "add_per_1000_rows_cpu_ms": add_cpu_ms,
            "drifted": len(evaluated.drift.drifted),
        }
    )


if __name__ == "__main__":
    main()
