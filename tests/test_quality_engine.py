"""Model quality in the engine, end to end: a real scikit-learn model served by `mlops-console serve
--log-inferences`, the real engine tailing that log with the reference artifact found through a real
MLflow registry, the real SQLite store, and real apprise deliveries to a loopback sink.

Clean traffic raises nothing; the demo's "shifted inputs" raise `feature_drift` naming the shifted
features (stored before it is delivered); clean traffic again resolves it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mlops_console.cli import main
from mlops_console.config import Settings, parse_settings
from mlops_console.core.engine import Engine
from mlops_console.core.quality.records import ActualRecord, to_json_line
from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.store import Store
from mlops_console.demo.datasets import IRIS, load_frame
from mlops_console.demo.traffic import good_payload
from tests._loopback import Sink, async_wait_for
from tests._quality_models import CONSTANT_MODEL, QUALITY_MODEL, REFERENCE_ROWS, train_quality_registry
from tests._serve_helpers import free_port, poll_until, process_env, spawn, stop_group, wait_ping

SHIFTED = {"petal_length", "petal_width", "sepal_width"}  # what the demo's chaos moves (datasets._SHIFTS)
FEATURES = {"sepal_length", "sepal_width", "petal_length", "petal_width"}
TITLE = "iris-prod: input features drifted"


@dataclass
class Traffic:
    """The demo traffic generator's own request bodies, sent without pause from a thread."""

    url: str
    shifted: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    rows: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        features, _ = load_frame(IRIS)
        columns, data = list(features.columns), features.round(6).values.tolist()
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                body = good_payload(IRIS, columns, data, self.shifted)
                response = client.post(
                    f"{self.url}/invocations", content=body, headers={"Content-Type": "application/json"}
                )
                if response.status_code != 200:
                    self.errors.append(response.text[:200])
                    continue
                self.rows += len(response.json()["predictions"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    return train_quality_registry(tmp_path_factory.mktemp("quality-engine-registry"))


def _serve(uri: str, model: str, root: Path) -> Iterator[tuple[str, str, Path]]:
    port, log = free_port(), root / "inferences.jsonl"
    cmd = [sys.executable, "-m", "mlops_console", "serve", f"models:/{model}@production",
           "--port", str(port), "--log-inferences", str(log)]  # fmt: skip
    output = root / "serve.out"
    proc = spawn(cmd, output, process_env(uri))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ping(url, proc, output, timeout=180)
        yield uri, url, log
    finally:
        stop_group(proc)


@pytest.fixture(scope="module")
def served(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    yield from _serve(registry, QUALITY_MODEL, tmp_path_factory.mktemp("quality-engine"))


@pytest.fixture(scope="module")
def constant(registry: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Path]]:
    yield from _serve(registry, CONSTANT_MODEL, tmp_path_factory.mktemp("quality-constant"))


def settings_for(
    tmp_path: Path,
    uri: str,
    url: str,
    log: Path,
    sink: Sink,
    model: str = QUALITY_MODEL,
    actuals: Path | None = None,
) -> Settings:
    inference_log: dict[str, object] = {"path": str(log), "format": "jsonl"}
    if actuals is not None:
        inference_log["actuals"] = {"path": str(actuals)}
    return parse_settings(
        {
            "registry": {"tracking_uri": uri},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {
                    "name": "iris-prod",
                    "url": url,
                    "model": model,
                    "alias": "production",
                    "interval": 1.0,
                    "inference_log": inference_log,
                    # A short window, so the test sees a whole clean -> shifted -> clean cycle.
                    "drift": {
                        "reference": "artifact:reference.csv",
                        "window": "12s",
                        "evaluate_every": "1s",
                        "min_current": 200,
                    },
                }
            ],
            "notifications": [{"url": sink.url}],
        }
    )


@dataclass
class Running:
    engine: Engine
    store: Store
    traffic: Traffic

    @property
    def quality(self) -> QualitySnapshot | None:
        return self.engine.snapshot().endpoints[0].quality


@pytest.fixture
async def running(tmp_path: Path, served: tuple[str, str, Path], sink: Sink) -> AsyncIterator[Running]:
    uri, url, log = served
    settings = settings_for(tmp_path, uri, url, log, sink)
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    traffic = Traffic(url)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    try:
        yield Running(engine, store, traffic)
    finally:
        traffic.stop.set()
        stop.set()
        await task
        thread.join(timeout=30)


def _judged(running: Running) -> QualitySnapshot | None:
    quality = running.quality
    return quality if quality is not None and quality.drift_share is not None else None


async def test_shifted_inputs_page_feature_drift_and_clean_traffic_resolves_it(
    running: Running, sink: Sink
) -> None:
    # Clean traffic: every feature judged against the artifact's rows, none drifting, nothing paged.
    first = await async_wait_for(lambda: _judged(running), timeout=120, what="a judged clean window")
    assert first.reference.startswith(f"artifact:reference.csv of {QUALITY_MODEL} v1 (run ")
    assert {f.reference_n for f in first.features} == {REFERENCE_ROWS}
    assert first.signature == f"MLmodel of {QUALITY_MODEL} v1"
    judged = [first.evaluated_at]

    def evaluations() -> bool:
        quality = _judged(running)
        if quality is not None and quality.evaluated_at != judged[-1]:
            judged.append(quality.evaluated_at)
            assert quality.drifted == (), quality.features
        return len(judged) >= 8

    await async_wait_for(evaluations, timeout=60, what="eight clean evaluations")
    assert running.traffic.errors == []
    assert not [t for t in sink.titles() if "drift" in t]
    quality_rules = {"feature_drift", "prediction_drift", "input_schema", "stuck_prediction"}
    alerts = await asyncio.to_thread(running.store.list_alerts, "all")
    assert [a.rule for a in alerts if a.rule in quality_rules] == []

    # The demo's "shifted inputs": a page naming the shifted features, written to the store first.
    running.traffic.shifted = True
    await async_wait_for(
        lambda: any(f"[FIRING] {TITLE}" in t for t in sink.titles()), timeout=90, what="drift page"
    )
    alerts = await asyncio.to_thread(running.store.list_alerts, "firing")
    drift = [a for a in alerts if a.rule == "feature_drift"]
    assert len(drift) == 1 and drift[0].model == QUALITY_MODEL and drift[0].version == "1"
    # It fires as soon as enough of the window has moved: the features named are shifted ones.
    named = {f for f in FEATURES if f"{f} " in drift[0].summary.split(" rows in the last")[0]}
    assert named and named <= SHIFTED, drift[0].summary
    assert "reference rows (artifact:reference.csv" in drift[0].summary
    page = next(m["message"] for m in sink.received if TITLE in m["title"])
    assert all(name in page for name in named)
    # The sink has the page before the notifier records its delivery: wait for that record.
    await async_wait_for(
        lambda: [e.kind for e in running.store.events(drift[0].id)][:2] == ["fired", "notified"],
        timeout=30,
        what="the page recorded as notified after the fired event",
    )
    # Once the window is all shifted, exactly the three shifted features drift.
    await async_wait_for(
        lambda: (q := _judged(running)) is not None and set(q.drifted) == SHIFTED,
        timeout=60,
        what="the three shifted features drifting",
    )

    # Clean again: one resolve once the window holds clean rows.
    running.traffic.shifted = False
    await async_wait_for(
        lambda: any(f"[RESOLVED] {TITLE}" in t for t in sink.titles()), timeout=90, what="drift resolve"
    )
    assert sum(f"[FIRING] {TITLE}" in t for t in sink.titles()) == 1
    resolved = await asyncio.to_thread(running.store.list_alerts, "resolved")
    assert [a.rule for a in resolved if a.rule == "feature_drift"] == ["feature_drift"]

    # The store holds the read position and aggregates, never an input value.
    db = sqlite3.connect(running.store.path)
    offset = json.loads(db.execute("SELECT offset FROM quality_state").fetchone()[0])
    assert offset["position"] > 0
    windows = [json.loads(row[0]) for row in db.execute("SELECT data FROM quality_windows")]
    assert windows and all("inputs" not in w for w in windows)
    assert any(set(w["drifted"]) == SHIFTED for w in windows)


def test_status_json_shows_each_endpoints_quality(
    served: tuple[str, str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` reads the log's latest window once (no store, no watcher) and prints its quality."""
    uri, url, log = served
    traffic = Traffic(url, shifted=True)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    try:
        poll_until(lambda: traffic.rows >= 600, 120, "600 shifted rows scored")
    finally:
        traffic.stop.set()
        thread.join(timeout=30)
    config = tmp_path / "c.toml"
    config.write_text(
        f'[registry]\ntracking_uri = "{uri}"\n[store]\npath = "{tmp_path / "console.db"}"\n'
        f'[[endpoints]]\nname = "iris-prod"\nurl = "{url}"\nmodel = "{QUALITY_MODEL}"\n'
        f'[endpoints.inference_log]\npath = "{log}"\n'
        '[endpoints.drift]\nreference = "artifact:reference.csv"\nwindow = "10m"\n'
    )
    assert main(["--config", str(config), "status", "--json"]) == 0
    endpoint = json.loads(capsys.readouterr().out)[0]
    quality = endpoint["quality"]
    assert quality["version"] == "1" and quality["rows"] >= 600 and quality["error"] is None
    assert quality["reference"].startswith("artifact:reference.csv of iris-q v1")
    assert quality["dataset_drift"] is True and set(quality["drifted"]) <= SHIFTED
    assert all("bins" in f and f["reference_n"] == REFERENCE_ROWS for f in quality["features"])
    assert main(["--config", str(config), "status"]) == 0
    text = capsys.readouterr().out
    assert "quality iris-prod v1: DRIFT" in text
    # `drift ENDPOINT` reads the same log with the endpoint's reference and window.
    assert main(["--config", str(config), "drift", "iris-prod", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["log"] == str(log) and report["window_seconds"] == 600.0
    assert report["quality"]["reference"].startswith("artifact:reference.csv of iris-q v1")
    assert report["quality"]["drift"]["dataset_drift"] is True


async def test_rows_with_a_null_column_page_input_schema(
    tmp_path: Path, served: tuple[str, str, Path], sink: Sink
) -> None:
    """The imputing model scores rows whose petal_width is null; the engine counts them against the
    version's MLmodel signature and pages `input_schema` with the column and the count."""
    uri, url, log = served
    settings = settings_for(tmp_path, uri, url, log, sink)
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    row = {"sepal_length": 5.0, "sepal_width": 3.1, "petal_length": 1.5, "petal_width": 0.2}
    broken = {**row, "petal_width": None}

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(40):  # 40 rows of which 10 have no petal_width: 25% > 5%
                body = {"dataframe_records": [row, row, row, broken]}
                assert client.post(f"{url}/invocations", json=body).status_code == 200

    try:
        await asyncio.to_thread(send)
        title = "[FIRING] iris-prod: inputs break the model signature"
        await async_wait_for(lambda: any(title in t for t in sink.titles()), timeout=90, what=title)
        alert = next(
            a for a in await asyncio.to_thread(store.list_alerts, "firing") if a.rule == "input_schema"
        )
        assert "petal_width null in" in alert.summary
        assert f"[signature: MLmodel of {QUALITY_MODEL} v1]" in alert.summary
    finally:
        stop.set()
        await task


async def test_a_model_answering_one_class_pages_stuck_prediction(
    tmp_path: Path, constant: tuple[str, str, Path], sink: Sink
) -> None:
    """A classifier that answers 1 whatever it is asked: varied inputs, one answer, a critical page."""
    uri, url, log = constant
    settings = settings_for(tmp_path, uri, url, log, sink, model=CONSTANT_MODEL)
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    traffic = Traffic(url)
    thread = threading.Thread(target=traffic.run, daemon=True)
    try:
        thread.start()
        title = "[FIRING] iris-prod: model stuck on one prediction"
        await async_wait_for(lambda: any(title in t for t in sink.titles()), timeout=90, what=title)
        alert = next(
            a for a in await asyncio.to_thread(store.list_alerts, "firing") if a.rule == "stuck_prediction"
        )
        assert alert.severity == "critical" and alert.version == "1"
        assert (
            "the same prediction 1 for the last" in alert.summary
            and "while the inputs varied" in alert.summary
        )
        assert traffic.errors == []
    finally:
        traffic.stop.set()
        stop.set()
        await task
        thread.join(timeout=30)


async def test_wrong_outcomes_in_a_second_log_page_performance_drop(
    tmp_path: Path, served: tuple[str, str, Path], sink: Sink
) -> None:
    """Requests carry `X-Request-Id`; their outcomes arrive later in another file (the
    `[endpoints.inference_log.actuals]` log), joined by id. Outcomes that disagree with the model page
    `performance_drop` against the training run's accuracy from the registry; only the outcomes'
    file changed, so the inference log alone would never have labelled a row."""
    uri, url, log = served
    actuals = tmp_path / "actuals.jsonl"
    actuals.touch()
    settings = settings_for(tmp_path, uri, url, log, sink, actuals=actuals)
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    features, target = load_frame(IRIS)
    columns, data, labels = list(features.columns), features.round(6).values.tolist(), target.tolist()
    picked = list(range(0, 150, 2))  # 75 requests of 4 rows: 300 labelled rows, every class

    def send() -> None:
        with httpx.Client(timeout=30) as client:
            for n, index in enumerate(picked):
                rows = [data[(index + k) % 150] for k in range(4)]
                body = {"dataframe_split": {"columns": columns, "data": rows}}
                answer = client.post(f"{url}/invocations", json=body, headers={"X-Request-Id": f"perf-{n}"})
                assert answer.status_code == 200
        # The true class moved by one: the model, right on ~95% of iris, is now right on almost none.
        with actuals.open("a") as out:
            for n, index in enumerate(picked):
                for k in range(4):
                    wrong = (labels[(index + k) % 150] + 1) % 3
                    out.write(to_json_line(ActualRecord(time.time(), f"perf-{n}:{k}", wrong)) + "\n")

    try:
        await asyncio.to_thread(send)
        title = "[FIRING] iris-prod: live performance dropped"
        await async_wait_for(lambda: any(title in t for t in sink.titles()), timeout=90, what=title)
        alert = next(
            a for a in await asyncio.to_thread(store.list_alerts, "firing") if a.rule == "performance_drop"
        )
        assert "accuracy" in alert.summary and "(training 0.9" in alert.summary
        assert alert.version == "1"
    finally:
        stop.set()
        await task
