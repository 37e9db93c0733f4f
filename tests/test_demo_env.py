"""The demo environment: a real registry, real serving processes, traffic, redeploy and clean stop."""

from __future__ import annotations

import asyncio
import subprocess
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from mlops_console.config import load_settings
from mlops_console.core.engine import Engine
from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.store import Store
from mlops_console.demo import DemoEnvironment, build_registry, state
from mlops_console.demo.registry import MARKER
from tests._loopback import async_wait_for
from tests._serve_helpers import poll_until, sample, scrape, total

IRIS_SHIFTED = {"petal_length", "petal_width", "sepal_width"}  # datasets._SHIFTS
IRIS_FEATURES = {"sepal_length", *IRIS_SHIFTED}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def invocations(url: str, status: str) -> float:
    labels = {"handler": "/invocations", "method": "POST", "status": status}
    return sample(scrape(url), "http_requests_total", **labels)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    build_registry(root)
    return root


def test_build_registry_versions_aliases_and_examples(demo_root: Path) -> None:
    from mlflow import MlflowClient

    uri = build_registry(demo_root)  # second call: reuses the marker, adds nothing
    assert uri == f"sqlite:///{demo_root / 'mlflow.db'}" and (demo_root / MARKER).exists()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    expected = {
        "iris": ({"production": "2", "staging": "3"}, 3),
        "diabetes": ({"production": "1", "staging": "2"}, 2),
    }
    for name, (aliases, count) in expected.items():
        assert {a: str(v) for a, v in client.get_registered_model(name).aliases.items()} == aliases
        versions = client.search_model_versions(f"name='{name}'")
        assert sorted(int(v.version) for v in versions) == list(range(1, count + 1))
        metric = "accuracy" if name == "iris" else "rmse"
        values = {client.get_run(v.run_id).data.metrics[metric] for v in versions}
        assert len(values) == count, f"{name} versions should differ in {metric}"
        for v in versions:
            logged = client.get_logged_model(v.source.removeprefix("models:/"))
            folder = Path(urlparse(logged.artifact_location).path)
            assert folder.is_relative_to(demo_root / "artifacts")
            assert (folder / "serving_input_example.json").exists(), (
                f"{name} v{v.version}: no serving example"
            )


@pytest.fixture(scope="module")
def demo(demo_root: Path) -> Iterator[DemoEnvironment]:
    env = DemoEnvironment(demo_root)
    try:
        env.start()
        yield env
    finally:
        env.stop()


async def test_shifted_inputs_chaos_raises_a_drift_alert_naming_the_shifted_features(
    demo: DemoEnvironment, tmp_path: Path
) -> None:
    """The demo as configured (its servers log inferences, its config tails them): clean traffic is
    judged against the first rows and does not drift; the "shifted inputs" chaos pages drift."""
    settings = load_settings(demo.write_config(tmp_path / "demo.toml"))
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    def judged() -> QualitySnapshot | None:
        quality = next(e.quality for e in engine.snapshot().endpoints if e.name == "iris-prod")
        return quality if quality is not None and quality.drift_share is not None else None

    def drift_alerts() -> list:  # type: ignore[type-arg]
        return [
            a for a in store.list_alerts("firing") if (a.rule, a.endpoint) == ("feature_drift", "iris-prod")
        ]

    try:
        clean = await async_wait_for(judged, timeout=300, what="iris-prod judged against its first rows")
        assert clean.reference.startswith("first 1500 rows of version 2"), clean.reference
        assert clean.drifted == () and await asyncio.to_thread(drift_alerts) == []
        demo.shift("iris-prod", True)
        alerts = await async_wait_for(lambda: drift_alerts(), timeout=240, what="a feature_drift alert")
        summary = alerts[0].summary.split(" rows in the last")[0]
        named = {f for f in IRIS_FEATURES if f"{f} " in summary}
        assert named and named <= IRIS_SHIFTED, alerts[0].summary
        assert alerts[0].version == "2"
        inbox = demo.root / "run" / "pager.jsonl"
        await async_wait_for(
            lambda: inbox.exists() and "[FIRING] iris-prod: input features drifted" in inbox.read_text(),
            timeout=30,
            what="the drift page in the demo's pager",
        )
    finally:
        demo.shift("iris-prod", False)
        stop.set()
        await task


async def test_batch_pipeline_logs_runs_and_its_chaos_pages_and_resolves(
    demo: DemoEnvironment, tmp_path: Path
) -> None:
    """The demo's batch-scoring job as configured: its runs are read and judged; "fail" pages
    pipeline_failed and "heal" resolves it; "fraction" and "hang" change what its runs log."""
    from mlflow import MlflowClient

    settings = load_settings(demo.write_config(tmp_path / "demo.toml"))
    assert [p.name for p in settings.pipelines] == ["batch-scoring"]
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    client = MlflowClient(tracking_uri=demo.tracking_uri)
    experiment = client.get_experiment_by_name("batch-scoring").experiment_id

    def newest() -> Any:
        return client.search_runs([experiment], max_results=1)[0]

    def failed_alerts(state: str) -> list:  # type: ignore[type-arg]
        return [
            a
            for a in store.list_alerts(state)
            if (a.rule, a.endpoint) == ("pipeline_failed", "pipeline:batch-scoring")
        ]

    try:
        await async_wait_for(
            lambda: engine.snapshot().pipelines[0].health == "up", timeout=60, what="the pipeline read, up"
        )
        demo.pipeline("batch-scoring", "fail")
        await async_wait_for(lambda: failed_alerts("firing"), timeout=60, what="pipeline_failed firing")
        demo.pipeline("batch-scoring", "heal")
        await async_wait_for(lambda: failed_alerts("resolved"), timeout=60, what="pipeline_failed resolved")
        demo.pipeline("batch-scoring", "fraction")
        await async_wait_for(
            lambda: newest().data.metrics.get("rows_processed") == 40.0, timeout=60, what="a run of 40 rows"
        )
        demo.pipeline("batch-scoring", "hang")
        hung = await async_wait_for(
            lambda: (
                (run := newest()).info.status == "RUNNING"
                and time.time() - run.info.start_time / 1000 > 5
                and run
            ),
            timeout=60,
            what="a run hanging past its usual 1.5 s",
        )
        demo.pipeline("batch-scoring", "heal")
        await async_wait_for(
            lambda: client.get_run(hung.info.run_id).info.status == "FINISHED", timeout=30, what="it ends"
        )
    finally:
        demo.pipeline("batch-scoring", "heal")
        stop.set()
        await task


def test_demo_environment_end_to_end(demo: DemoEnvironment, tmp_path: Path) -> None:
    endpoints = {ep["name"]: ep for ep in demo.endpoints()}
    assert list(endpoints) == ["iris-prod", "iris-staging", "diabetes-prod"]
    for ep in endpoints.values():
        assert httpx.get(f"{ep['url']}/ping").status_code == 200 and alive(ep["pid"])
    expected_versions = {"iris-prod": "2", "iris-staging": "3", "diabetes-prod": "1"}
    for name, version in expected_versions.items():
        assert httpx.get(f"{endpoints[name]['url']}/model-info").json()["model_version"] == version
    seen_pids = set(demo.pids().values())
    assert "traffic" in demo.pids()
    batch = state.read_pid(state.batch_pid_path(demo.root))
    assert batch is not None and alive(batch)
    seen_pids.add(batch)  # the batch-scoring job stops with the demo too

    # background traffic reaches every endpoint
    for ep in endpoints.values():
        poll_until(lambda ep=ep: invocations(ep["url"], "200") >= 5, 30, f"traffic to {ep['name']}")

    # chaos: malformed payloads answer 400, a shifted input distribution moves the prediction mix
    staging = endpoints["iris-staging"]["url"]
    demo.malformed("iris-staging", True)
    poll_until(lambda: invocations(staging, "400") >= 3, 20, "malformed traffic -> 400s")
    demo.malformed("iris-staging", False)
    prod = endpoints["iris-prod"]["url"]
    demo.shift("iris-prod", True)
    window = {"last": scrape(prod)}

    def setosa_gone() -> bool:
        now, last = scrape(prod), window["last"]
        window["last"] = now
        predicted = total(now, "model_predictions_total") - total(last, "model_predictions_total")
        setosa = sample(now, "model_predictions_total", label="0") - sample(
            last, "model_predictions_total", label="0"
        )
        return predicted >= 10 and setosa <= 0.05 * predicted

    poll_until(setosa_gone, 30, "shifted traffic without setosa predictions", interval=1.5)
    demo.shift("iris-prod", False)

    # the config's deploy command restarts the endpoint on another version, same port
    config = tomllib.loads(demo.write_config(tmp_path / "demo.toml").read_text())
    assert config["registry"]["tracking_uri"] == demo.tracking_uri
    entry = next(e for e in config["endpoints"] if e["name"] == "iris-prod")
    assert entry["url"] == prod and entry["metrics_url"] == f"{prod}/metrics"
    assert (entry["adapter"], entry["model"], entry["alias"]) == ("mlflow", "iris", "production")

    # the demo's pager receives the console's apprise notifications
    from mlops_console.core.notifier import deliver

    pager = config["notifications"][0]["url"]
    assert deliver(pager, "[FIRING] iris-prod: endpoint down", "body", "critical", "firing", 5).ok
    inbox = demo.root / "run" / "pager.jsonl"
    poll_until(lambda: inbox.exists() and "endpoint down" in inbox.read_text(), 10, "pager inbox")
    old_pid = endpoints["iris-prod"]["pid"]
    command = entry["deploy"]["command"].format(model="iris", alias="production", version="3")
    result = subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=entry["deploy"]["timeout"]
    )
    assert result.returncode == 0, result.stderr
    assert httpx.get(f"{prod}/model-info").json()["model_version"] == "3"
    new_pid = next(ep["pid"] for ep in demo.endpoints() if ep["name"] == "iris-prod")
    assert new_pid != old_pid and not alive(old_pid)
    seen_pids.add(new_pid)

    # a failed deploy exits non-zero with a message and leaves the endpoint serving
    bad = entry["deploy"]["command"].format(model="iris", alias="production", version="99")
    result = subprocess.run(bad, shell=True, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "iris-prod" in result.stderr
    assert httpx.get(f"{prod}/ping").status_code == 200
    seen_pids.update(demo.pids().values())

    # a bad release (what the demo's automatic rollback of iris production is for): the next other
    # version deployed fails half its requests, on that server only, so a rollback's redeploy is healthy
    assert config["auto_rollback"] == [{"model": "iris", "alias": "production", "watch": "10m"}]
    demo.bad_release("iris-prod")
    for version, error_rate in (("2", 0.5), ("3", 0.0)):
        command = entry["deploy"]["command"].format(model="iris", alias="production", version=version)
        result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert httpx.get(f"{prod}/chaos").json()["error_rate"] == error_rate
    seen_pids.update(demo.pids().values())

    # kill / heal
    demo.kill("iris-staging")
    assert next(ep["pid"] for ep in demo.endpoints() if ep["name"] == "iris-staging") is None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{staging}/ping")
    demo.slow("diabetes-prod", 50)
    assert httpx.get(f"{endpoints['diabetes-prod']['url']}/chaos").json()["delay_ms"] == 50
    for name in endpoints:
        demo.heal(name)
    assert httpx.get(f"{staging}/ping").status_code == 200
    assert httpx.get(f"{endpoints['diabetes-prod']['url']}/chaos").json()["delay_ms"] == 0
    seen_pids.update(demo.pids().values())

    demo.stop()
    # Processes started by the deploy command are not our children: their exit is seen a moment later.
    try:
        poll_until(lambda: not [pid for pid in seen_pids if alive(pid)], 15, "every demo process gone")
    except AssertionError:
        left = {pid: " ".join(psutil.Process(pid).cmdline()) for pid in seen_pids if alive(pid)}
        raise AssertionError(f"still running after the demo stopped: {left}") from None
    assert demo.endpoints() == []
