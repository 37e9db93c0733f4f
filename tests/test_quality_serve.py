"""Model quality end to end: real scikit-learn models served by `mlops-console serve --log-inferences`,
the demo's own traffic (clean and with its "shifted inputs" chaos), and `mlops-console drift` reading
the log, with the reference artifact and the signature found through a real MLflow registry."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mlops_console.cli import main
from mlops_console.core.quality.monitor import QualityMonitor
from mlops_console.core.quality.offsets import LogOffset
from mlops_console.core.quality.performance import PerformanceOptions
from mlops_console.core.quality.records import ActualRecord, InferenceRecord, parse_time, to_json_line
from mlops_console.core.quality.tail import LineTail
from mlops_console.core.quality.window import QualityOptions
from mlops_console.demo.datasets import IRIS, load_frame
from mlops_console.demo.traffic import good_payload
from tests._quality_models import CONSTANT_MODEL, QUALITY_MODEL, REFERENCE_ROWS, train_quality_registry
from tests._serve_helpers import (
    free_port,
    poll_until,
    process_env,
    scrape,
    spawn,
    stop_group,
    total,
    wait_ping,
)

SHIFTED = {"petal_length", "petal_width", "sepal_width"}  # what the demo's chaos moves (datasets._SHIFTS)


@dataclass
class Served:
    url: str
    log: Path
    proc: subprocess.Popen[bytes]
    output: Path

    def lines(self) -> list[dict]:
        """The complete lines logged so far (the writer may be in the middle of the last one)."""
        text = self.log.read_text() if self.log.exists() else ""
        return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    return train_quality_registry(tmp_path_factory.mktemp("quality-registry"))


def _spawn(uri: str, model: str, root: Path, *extra: str) -> Served:
    port, log = free_port(), root / "inferences.jsonl"
    cmd = [sys.executable, "-m", "mlops_console", "serve", f"models:/{model}@production", "--port", str(port),
           "--log-inferences", str(log), *extra]  # fmt: skip
    output = root / "serve.out"
    return Served(f"http://127.0.0.1:{port}", log, spawn(cmd, output, process_env(uri)), output)


@pytest.fixture(scope="module")
def servers(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Served]]:
    """Three servers started together (each takes seconds to load mlflow): the imputing iris model,
    the constant model, and the iris model logging a sample into a small, often rotated log."""
    started = {
        "iris": _spawn(registry, QUALITY_MODEL, tmp_path_factory.mktemp("iris")),
        "constant": _spawn(registry, CONSTANT_MODEL, tmp_path_factory.mktemp("constant")),
        "rotating": _spawn(
            registry, QUALITY_MODEL, tmp_path_factory.mktemp("rotating"),
            "--log-sample", "0.5", "--log-max-bytes", "8k",
        ),
    }  # fmt: skip
    try:
        for served in started.values():
            wait_ping(served.url, served.proc, served.output, timeout=180)
        yield started
    finally:
        for served in started.values():
            stop_group(served.proc)


@pytest.fixture(scope="module")
def iris_rows() -> tuple[list[str], list[list[float]], list[int]]:
    features, target = load_frame(IRIS)
    return list(features.columns), features.round(6).values.tolist(), target.tolist()


def send_traffic(
    url: str, iris: tuple[list[str], list[list[float]], list[int]], rows: int, *, shifted: bool
) -> int:
    """The demo traffic generator's own request bodies (1-5 rows each) until `rows` rows were scored."""
    columns, data, _ = iris
    sent = 0
    with httpx.Client(timeout=30) as client:
        while sent < rows:
            response = client.post(
                f"{url}/invocations",
                content=good_payload(IRIS, columns, data, shifted),
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 200, response.text
            sent += len(response.json()["predictions"])
    return sent


def wait_logged(served: Served, rows: int) -> list[dict]:
    def logged() -> list[dict] | None:
        lines = served.lines()
        return lines if len(lines) >= rows else None

    return poll_until(logged, 30, f"{rows} logged rows")


def drift_cli(registry: str, log: Path, *args: str, capsys: pytest.CaptureFixture[str] | None = None) -> dict:
    """`mlops-console drift ... --json`: in this process when given `capsys` (the same code, seconds
    faster), else as its own process."""
    argv = ["drift", "--log", str(log), "--tracking-uri", registry, "--json", *args]
    if capsys is not None:
        capsys.readouterr()
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)
    cmd = [sys.executable, "-m", "mlops_console", *argv]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=process_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def features_of(report: dict) -> dict[str, dict]:
    return {f["name"]: f for f in report["quality"]["drift"]["features"]}


def test_clean_traffic_has_no_drift_and_shifted_traffic_names_the_shifted_features(
    servers: dict[str, Served],
    registry: str,
    iris_rows: tuple[list[str], list[list[float]], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    served = servers["iris"]
    random.seed(12)
    clean = send_traffic(served.url, iris_rows, 800, shifted=False)
    wait_logged(served, clean)
    report = drift_cli(registry, served.log, "--reference", "artifact:reference.csv", "--window", "1h")
    quality = report["quality"]
    assert (report["model"], report["version"], quality["rows"]) == (QUALITY_MODEL, "1", clean)
    # The reference is the artifact logged with the served version's run, found through the registry.
    assert quality["reference"].startswith(f"artifact:reference.csv of {QUALITY_MODEL} v1 (run ")
    assert {f["reference_n"] for f in features_of(report).values()} == {REFERENCE_ROWS}
    assert quality["drift"]["drifted_features"] == [] and not quality["drift"]["dataset_drift"]
    assert {f["verdict"] for f in features_of(report).values()} == {"ok"}

    switched = time.time()
    shifted = send_traffic(served.url, iris_rows, 600, shifted=True)
    newest = wait_logged(served, clean + shifted)[-1]
    window = (parse_time(newest["time"]) or 0.0) - switched  # exactly the shifted rows
    report = drift_cli(
        registry,
        served.log,
        "--reference",
        "artifact:reference.csv",
        "--window",
        f"{window:.3f}s",
        capsys=capsys,
    )
    drift = report["quality"]["drift"]
    assert report["quality"]["rows"] == shifted
    assert set(drift["drifted_features"]) == SHIFTED and drift["dataset_drift"]
    assert features_of(report)["sepal_length"]["verdict"] == "ok"
    assert report["signature"] == f"MLmodel of {QUALITY_MODEL} v1"


def test_rows_missing_a_column_break_the_input_signature(
    servers: dict[str, Served], registry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The imputing model scores rows whose petal_width is null or absent (a record without the key
    beside one with it); they are logged with a null and counted against the MLmodel signature. A
    request lacking the column altogether is refused by MLflow's schema check, and not logged."""
    served = servers["iris"]
    before = len(served.lines())
    row = {"sepal_length": 5.0, "sepal_width": 3.1, "petal_length": 1.5, "petal_width": 0.2}
    partial = {k: v for k, v in row.items() if k != "petal_width"}
    bodies = [
        {"dataframe_records": [partial, row]},
        {"dataframe_records": [{**row, "petal_width": None}]},
        {"dataframe_split": {"columns": list(row), "data": [[5.0, 3.1, 1.5, None], list(row.values())]}},
    ]
    for body in bodies:
        assert httpx.post(f"{served.url}/invocations", json=body, timeout=30).status_code == 200
    refused = httpx.post(f"{served.url}/invocations", json={"dataframe_records": [partial]}, timeout=30)
    assert refused.status_code == 400
    wait_logged(served, before + 5)
    report = drift_cli(
        registry, served.log, "--reference", "artifact:reference.csv", "--window", "5s", capsys=capsys
    )
    inputs = report["quality"]["inputs"]
    assert inputs["columns"] == {"petal_width": {"null": 3}}
    assert inputs["broken_rows"] == 3 and inputs["rows"] >= 5
    assert report["signature"] == f"MLmodel of {QUALITY_MODEL} v1"


def test_a_constant_model_is_stuck_and_a_real_one_is_not(
    servers: dict[str, Served],
    registry: str,
    iris_rows: tuple[list[str], list[list[float]], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    random.seed(13)
    constant = servers["constant"]
    sent = send_traffic(constant.url, iris_rows, 60, shifted=False)
    wait_logged(constant, sent)
    report = drift_cli(registry, constant.log, "--window", "1h", capsys=capsys)
    stuck = report["quality"]["stuck"]
    assert stuck["stuck"] and stuck["run"] == sent and stuck["prediction"] == "1"
    assert report["quality"]["reference"].startswith("no reference yet: ")
    healthy = drift_cli(registry, servers["iris"].log, "--window", "1h", capsys=capsys)
    assert not healthy["quality"]["stuck"]["stuck"]
    assert healthy["quality"]["stuck"]["longest"] < 50


def test_actual_outcomes_join_the_served_predictions(
    servers: dict[str, Served],
    registry: str,
    iris_rows: tuple[list[str], list[list[float]], list[int]],
    tmp_path: Path,
) -> None:
    """Requests carry `X-Request-Id`; the true labels arrive later in a second log; live accuracy is
    measured per version and set against the training run's accuracy from the registry."""
    from mlops_console.config import RegistrySettings
    from mlops_console.core.registry import RegistryClient

    served = servers["iris"]
    columns, data, labels = iris_rows
    before = len(served.lines())
    picked = list(range(0, 150, 3)) * 5  # 250 rows, every class
    with httpx.Client(timeout=30) as client:
        for n, index in enumerate(picked):
            body = {"dataframe_split": {"columns": columns, "data": [data[index]]}}
            answer = client.post(f"{served.url}/invocations", json=body, headers={"X-Request-Id": f"req-{n}"})
            assert answer.status_code == 200
    logged = wait_logged(served, before + len(picked))[before:]
    assert [line["id"] for line in logged] == [f"req-{n}" for n in range(len(picked))]
    actuals = tmp_path / "actuals.jsonl"
    actuals.write_text(
        "".join(
            to_json_line(ActualRecord(time.time(), f"req-{n}", labels[index])) + "\n"
            for n, index in enumerate(picked)
        )
    )
    monitor = QualityMonitor(
        QualityOptions(window=3600), PerformanceOptions(min_labelled=200), learn_reference=False
    )
    client = RegistryClient(RegistrySettings(tracking_uri=registry))
    training = client.version(QUALITY_MODEL, "1").metrics
    monitor.set_training_metrics((QUALITY_MODEL, "1"), training)
    for path in (served.log, actuals):
        offset: LogOffset | None = None
        while True:
            batch = LineTail(path).read(offset)
            monitor.add(batch.records)
            offset = batch.offset
            if not batch.more:
                break
    quality = next(q for q in monitor.evaluate(time.time()) if q.version == "1")
    report = quality.performance
    assert report is not None and report.labelled == len(picked) and report.task == "classification"
    correct = sum(line["prediction"] == labels[index] for line, index in zip(logged, picked, strict=True))
    assert report.metrics["accuracy"] == pytest.approx(correct / len(picked))
    assert report.training["accuracy"] == pytest.approx(training["accuracy"])
    assert report.metrics["accuracy"] > 0.9 and not report.performance_drop


def test_a_sampled_log_rotating_under_traffic_is_followed_without_loss_or_double_counting(
    servers: dict[str, Served], iris_rows: tuple[list[str], list[list[float]], list[int]]
) -> None:
    served = servers["rotating"]
    columns, data, _ = iris_rows
    tail, offset = LineTail(served.log), None
    seen: list[str] = []
    rotations = 0

    def follow() -> None:
        nonlocal offset, rotations
        while True:
            batch = tail.read(offset)
            seen.extend(r.id for r in batch.records if isinstance(r, InferenceRecord) and r.id)
            rotations += sum(e.startswith("rotated:") for e in batch.events)
            assert not any(e.startswith(("lost:", "truncated:")) for e in batch.events), batch.events
            offset = batch.offset
            if not batch.more:
                return

    with httpx.Client(timeout=30) as client:
        for n in range(400):
            body = {"dataframe_split": {"columns": columns, "data": [data[n % 150], data[(n * 7) % 150]]}}
            assert client.post(
                f"{served.url}/invocations", json=body, headers={"X-Request-Id": f"q{n}"}
            ).is_success
            if n % 25 == 0:
                follow()

    def written() -> float:
        return total(scrape(served.url), "inference_log_rows_total", outcome="written")

    def all_accounted() -> float | None:
        samples = scrape(served.url)
        out = total(samples, "inference_log_rows_total", outcome="written") + total(
            samples, "inference_log_rows_total", outcome="sampled_out"
        )
        return out if out == 800 else None

    poll_until(all_accounted, 30, "every scored row written or sampled out")
    poll_until(lambda: (follow(), len(seen) == written())[1], 30, "the reader to catch up")
    assert len(seen) == len(set(seen)) == written()
    assert 300 < len(seen) < 500  # --log-sample 0.5 of 800 rows
    order = [(int(i.split(":")[0][1:]), int(i.split(":")[1])) for i in seen]
    assert order == sorted(order)
    assert rotations >= 5 and len(list(served.log.parent.glob("inferences.jsonl.*"))) == 5


def test_the_consoles_own_probes_are_scored_but_not_logged(
    servers: dict[str, Served], iris_rows: tuple[list[str], list[list[float]], list[int]]
) -> None:
    """The engine's synthetic probe (its HTTP client marks every request with `X-Mlops-Console-Probe`)
    is answered like any request, but only the real requests around it reach the inference log."""
    from mlops_console.config import parse_settings
    from mlops_console.core.adapters import probe_endpoint_once

    served = servers["iris"]
    columns, data, _ = iris_rows
    marker = [9.87, 6.54, 3.21, 1.23]  # a row no real request here sends
    endpoint = parse_settings(
        {
            "endpoints": [
                {
                    "name": "iris",
                    "url": served.url,
                    "payload": {"dataframe_split": {"columns": columns, "data": [marker, marker]}},
                }
            ]
        }
    ).endpoints[0]
    before = len(served.lines())
    with httpx.Client(timeout=30) as client:
        for request_id in ("real-before", "real-after"):
            body = {"dataframe_split": {"columns": columns, "data": [data[0]]}}
            answer = client.post(f"{served.url}/invocations", json=body, headers={"X-Request-Id": request_id})
            assert answer.status_code == 200
            if request_id == "real-before":
                probed = asyncio.run(probe_endpoint_once(endpoint))
                assert probed.ok and probed.valid is True, probed.error
    # The writer keeps request order, so once the later real row is logged the probe's would be too.
    logged = wait_logged(served, before + 2)[before:]
    assert [line["id"] for line in logged] == ["real-before", "real-after"]
    assert not any(line["inputs"]["sepal_length"] == marker[0] for line in served.lines())


def test_bad_log_options_are_usage_errors(tmp_path: Path) -> None:
    for flag, value in (
        ("--log-sample", "0"),
        ("--log-sample", "1.5"),
        ("--log-sample", "nan"),
        ("--log-max-bytes", "10X"),
    ):
        cmd = [sys.executable, "-m", "mlops_console", "serve", "models:/m@production", "--log-inferences",
               str(tmp_path / "x.jsonl"), flag, value]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and f"argument {flag}: " in result.stderr, (flag, value, result.stderr)
        assert "Traceback" not in result.stderr
