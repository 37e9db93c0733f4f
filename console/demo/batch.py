"""The demo's batch-scoring pipeline: scores a batch of rows every few seconds and logs an MLflow run.

    python -m mlops_console.demo.batch --root ROOT [--exit-with-pid PID] [--every SECONDS]

Each run scores a batch of the diabetes dataset with the `production` model and logs `rows_processed`
and `mean_prediction` to the experiment `batch-scoring` of the demo's registry. Chaos switches, read
from `run/batch-control.json` before each run (`DemoEnvironment.pipeline` writes them): `fail` (the run
ends FAILED), `hang` (the run stays RUNNING until the switch is off), `slow` (the run takes `slow`
times longer), `fraction` (only that share of the rows is scored).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlops_console.demo import state
from mlops_console.demo.datasets import DIABETES

EXPERIMENT = state.BATCH_PIPELINE
EVERY_S = 8.0
ROWS = 400
BASE_SECONDS = 1.5
"""How long an ordinary run takes (the scoring itself is instant; the rest is the job's "I/O")."""


def fresh_experiment(tracking_uri: str) -> str:
    """The experiment's id, its runs of an earlier demo session deleted: a demo started again would
    otherwise begin with a pipeline late by however long the demo was off."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is None:
        return str(client.create_experiment(EXPERIMENT))
    for run in client.search_runs([found.experiment_id], max_results=5000):
        client.delete_run(run.info.run_id)
    return str(found.experiment_id)


def wait_for_first_run(tracking_uri: str, experiment_id: str, alive: Any, log: Path, timeout: float) -> None:
    """Return once the job has logged a run that ended (so a demo never starts with a late pipeline);
    EndpointStartError with the job's log when it dies or takes longer than `timeout`."""
    from mlflow import MlflowClient

    from mlops_console.demo.processes import EndpointStartError, log_tail

    client = MlflowClient(tracking_uri=tracking_uri)
    deadline = time.monotonic() + timeout
    while not any(r.info.status != "RUNNING" for r in client.search_runs([experiment_id], max_results=5)):
        if not alive():
            raise EndpointStartError(
                f"pipeline {state.BATCH_PIPELINE} exited during start-up:\n{log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise EndpointStartError(
                f"pipeline {state.BATCH_PIPELINE} logged no run within {timeout:.0f} s:\n{log_tail(log)}"
            )
        time.sleep(0.5)


def run_once(
    client: Any, experiment_id: str, model: Any, features: Any, root: Path, stop: threading.Event
) -> None:
    chaos = state.batch_controls(root)
    run = client.create_run(experiment_id, tags={"pipeline": state.BATCH_PIPELINE})
    run_id = run.info.run_id
    try:
        fraction = min(max(float(chaos.get("fraction", 1.0)), 0.0), 1.0)
        rows = features.iloc[: max(int(ROWS * fraction), 1)]
        predictions = model.predict(rows)
        took = BASE_SECONDS * max(float(chaos.get("slow", 1.0)), 1.0)
        deadline = time.monotonic() + took
        while (time.monotonic() < deadline or state.batch_controls(root).get("hang")) and not stop.is_set():
            time.sleep(0.2)
        if chaos.get("fail"):
            raise RuntimeError("demo chaos: the batch failed")
        client.log_metric(run_id, "rows_processed", float(len(rows)))
        client.log_metric(run_id, "mean_prediction", float(sum(predictions) / len(predictions)))
        client.set_terminated(run_id, "KILLED" if stop.is_set() else "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")


def _owner_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_console.demo.batch")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--exit-with-pid", type=int, default=None)
    parser.add_argument("--every", type=float, default=EVERY_S)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import signal

    import mlflow
    from mlflow import MlflowClient

    from mlops_console.demo.datasets import load_frame
    from mlops_console.demo.registry import tracking_uri_for

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    uri = tracking_uri_for(root)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(EXPERIMENT)
    experiment_id = found.experiment_id if found else client.create_experiment(EXPERIMENT)
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{DIABETES}@production")
    features = load_frame(DIABETES)[0].iloc[:ROWS]
    while not stop.is_set() and _owner_alive(args.exit_with_pid):
        started = time.monotonic()
        run_once(client, experiment_id, model, features, root, stop)
        stop.wait(max(args.every - (time.monotonic() - started), 0.5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
