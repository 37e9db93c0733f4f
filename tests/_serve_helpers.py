"""Helpers for the serve and demo tests: real processes, polled until a deadline, never slept on."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(tracking_uri: str | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    # `mlflow models serve` execs `uvicorn` by name, so the venv's bin must be on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return env


def spawn(cmd: Sequence[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )


def poll_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_ping(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"{url} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{url}/ping", timeout=1.0).status_code == 200
        return False

    poll_until(ready, timeout, f"{url}/ping")


def stop_group(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# A deploy hook as a real one behaves: stop the endpoint's server, wait until the port is free, start
# it again on the promoted version (same port, in its own process group), record its pid.
REDEPLOY = """
import os, signal, subprocess, sys, time, urllib.request
pidfile, port, log, version = sys.argv[1:5]
try:
    os.killpg(int(open(pidfile).read()), signal.SIGTERM)
except (OSError, ValueError):
    pass
for _ in range(300):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=0.2)
        time.sleep(0.1)
    except OSError:
        break
proc = subprocess.Popen([sys.executable, "-m", "mlops_console", "serve", f"models:/iris/{version}",
                         "--port", port, *sys.argv[5:]], stdout=open(log, "ab"), stderr=subprocess.STDOUT,
                        start_new_session=True)
open(pidfile, "w").write(str(proc.pid))
print(f"iris v{version} starting as pid {proc.pid}")
"""


def redeploy_hook(root: Path, pidfile: Path, port: int, log: Path, *serve_args: str) -> str:
    """Write the deploy hook under `root`; returns its `deploy.command` (with `{version}`)."""
    hook = root / "redeploy.py"
    hook.write_text(REDEPLOY)
    return " ".join([sys.executable, str(hook), str(pidfile), str(port), str(log), "{version}", *serve_args])


def scrape(url: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus samples as {(sample name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=5.0).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """Sum of a sample over every label set that includes `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


# --- a tiny registry, trained in a child process so the test process' mlflow state stays clean ---

TINY_MODEL = "m"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def train_tiny_registry(root: Path) -> str:
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    subprocess.run(
        [sys.executable, "-m", "tests._serve_helpers", str(root)],
        check=True, cwd=REPO, env=process_env(uri), capture_output=True, timeout=240,
    )  # fmt: skip
    return uri


def _train(root: Path) -> None:
    import mlflow
    from mlflow import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    # An explicit artifact root: the default (./mlruns) would litter the working tree.
    experiment_id = MlflowClient().create_experiment(
        "serve-tests", artifact_location=(root / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment_id)
    bunch = load_iris(as_frame=True)
    features = bunch.data.set_axis(IRIS_COLUMNS, axis=1)
    for c in (0.05, 1.0):  # v1 and v2 differ, so serving the wrong version can show
        with mlflow.start_run():
            model = LogisticRegression(C=c, max_iter=500).fit(features, bunch.target)
            mlflow.sklearn.log_model(
                model, name="model", input_example=features.head(2), registered_model_name=TINY_MODEL,
                pip_requirements=["scikit-learn"], serialization_format="cloudpickle",
            )  # fmt: skip
    MlflowClient().set_registered_model_alias(TINY_MODEL, "production", "2")


if __name__ == "__main__":
    _train(Path(sys.argv[1]))
