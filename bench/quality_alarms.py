"""Scenario 10 worker: false alarms on clean traffic, and how soon shifted traffic is caught.

`python -m bench.quality_alarms --hours 2 --trials 5` prints one JSON line. The demo's own traffic
is replayed in simulated time (no servers, so hours take seconds): the request bodies come from the
demo traffic generator (`good_payload`: 1 to 5 rows drawn from the model's dataset, or shifted by
its "shifted inputs" chaos), at the demo's mean rate for the model's production endpoint. The
console's own code scores them: `QualityMonitor` with a 15-minute window, evaluated every 30 s.

Two references: the first 1,500 rows after the deploy (the default without a reference artifact)
and a 2,000-row sample of the dataset (what an `artifact:reference.csv` would hold).
- false alarms: evaluations with any drifting feature, over `hours` of clean traffic;
- detection: after 20 clean minutes, the chaos switch turns on; seconds until each shifted feature
  is reported drifting, and until the dataset is (evaluated every 10 s), over `trials` runs.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from typing import Any

from bench.common import emit

WINDOW = 900.0
EVALUATE_EVERY = 30.0
DETECT_EVERY = 10.0
WARM_UP = 1200.0
MEAN_ROWS_PER_REQUEST = 3.0  # good_payload draws 1..5 rows


class Traffic:
    """The demo's request bodies for one model, as rows with simulated times."""

    def __init__(self, model: str, rps: float, seed: int) -> None:
        from mlops_console.demo.datasets import load_frame

        features, _ = load_frame(model)
        self.model = model
        self.columns = list(features.columns)
        self.rows = features.round(6).values.tolist()
        self.rps = rps
        self.random = random.Random(seed)

    def records(self, start: float, seconds: float, shifted: bool) -> list[Any]:
        from mlops_console.core.quality.records import InferenceRecord
        from mlops_console.demo import traffic

        random.seed(self.random.random())  # good_payload draws from the module's random
        out = []
        at = start
        while at < start + seconds:
            at += self.random.expovariate(self.rps)
            payload = json.loads(traffic.good_payload(self.model, self.columns, self.rows, shifted))
            if "dataframe_split" in payload:
                rows = [dict(zip(self.columns, r, strict=True)) for r in payload["dataframe_split"]["data"]]
            else:
                rows = payload["dataframe_records"]
            out += [InferenceRecord(at, row, 0, self.model, "1") for row in rows]
        return out


def monitor_for(traffic: Traffic, mode: str) -> Any:
    from mlops_console.core.quality.monitor import QualityMonitor
    from mlops_console.core.quality.reference import profile_rows
    from mlops_console.core.quality.window import QualityOptions

    monitor = QualityMonitor(QualityOptions(window=WINDOW), learn_reference=mode == "first_rows")
    if mode == "sample":
        rows = [
            dict(zip(traffic.columns, traffic.random.choice(traffic.rows), strict=True)) for _ in range(2000)
        ]
        monitor.set_reference((traffic.model, "1"), profile_rows(rows, source="sample"))
    return monitor


def drifting(monitor: Any, end: float) -> tuple[set[str], bool]:
    (quality,) = monitor.evaluate(end) or (None,)
    if quality is None or quality.drift is None:
        return set(), False
    return set(quality.drift.drifted), quality.drift.dataset_drift


def false_alarms(model: str, rps: float, mode: str, hours: float, seed: int) -> dict[str, Any]:
    traffic = Traffic(model, rps, seed)
    monitor = monitor_for(traffic, mode)
    now, evaluations, alarms, episodes, features_hit = 0.0, 0, 0, 0, 0
    previous = False
    while now < hours * 3600:
        monitor.add(traffic.records(now, EVALUATE_EVERY, shifted=False))
        now += EVALUATE_EVERY
        if now < WINDOW:
            continue
        drifted, _ = drifting(monitor, now)
        evaluations += 1
        alarms += bool(drifted)
        features_hit += len(drifted)
        episodes += bool(drifted) and not previous
        previous = bool(drifted)
    return {
        "evaluations": evaluations,
        "alarm_evaluations": alarms,
        "episodes": episodes,
        "feature_alarms": features_hit,
    }


def detection(model: str, rps: float, mode: str, seed: int, shifted_names: set[str]) -> dict[str, Any]:
    traffic = Traffic(model, rps, seed)
    monitor = monitor_for(traffic, mode)
    monitor.add(traffic.records(0.0, WARM_UP, shifted=False))
    now = WARM_UP
    found: dict[str, float] = {}
    dataset: float | None = None
    while now < WARM_UP + WINDOW and (len(found) < len(shifted_names) or dataset is None):
        monitor.add(traffic.records(now, DETECT_EVERY, shifted=True))
        now += DETECT_EVERY
        drifted, whole = drifting(monitor, now)
        for name in drifted:
            found.setdefault(name, now - WARM_UP)
        if whole and dataset is None:
            dataset = now - WARM_UP
    return {"features": found, "dataset": dataset, "wrong": sorted(set(found) - shifted_names)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()

    from mlops_console.demo.datasets import _SHIFTS, DIABETES, IRIS
    from mlops_console.demo.traffic import DEFAULT_BASE_RPS

    results: dict[str, Any] = {"hours": args.hours, "trials": args.trials}
    for model, endpoint in ((IRIS, "iris-prod"), (DIABETES, "diabetes-prod")):
        rps = DEFAULT_BASE_RPS[endpoint]
        shifted = set(_SHIFTS[model])
        for mode in ("first_rows", "sample"):
            clean = false_alarms(model, rps, mode, args.hours, seed=1)
            trials = [detection(model, rps, mode, seed, shifted) for seed in range(100, 100 + args.trials)]
            delays = [max(t["features"].values()) for t in trials if len(t["features"]) >= len(shifted)]
            dataset = [t["dataset"] for t in trials if t["dataset"] is not None]
            results[f"{model}/{mode}"] = {
                "rows_per_s": rps * MEAN_ROWS_PER_REQUEST,
                **clean,
                "false_alarm_rate": clean["alarm_evaluations"] / clean["evaluations"]
                if clean["evaluations"]
                else None,
                "detected_all": len(delays),
                "all_features_delay_s_median": statistics.median(delays) if delays else None,
                "all_features_delay_s_max": max(delays) if delays else None,
                "dataset_delay_s_median": statistics.median(dataset) if dataset else None,
                "wrongly_named": sorted({n for t in trials for n in t["wrong"]}),
            }
    emit(results)


if __name__ == "__main__":
    main()
