"""The `oip` adapter against a real MLServer (its own cached virtual environment, `parallel_workers: 0`,
an iris classifier trained there), watched by the real engine with a real MLflow registry and a
local page sink: health, served version, traffic from MLServer's own metrics, a kill and a restart
on a new version, a model taken out of service and put back, and a server that exits 0 when its model
does not load. The Open Inference Protocol as Triton and KServe speak it is covered here too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import new_http_session
from mlops_console.core.promscrape import scrape
from mlops_console_plugins.oip_adapter import OipAdapter
from tests._loopback import Sink, async_wait_for
from tests._stacks import EngineRun, MlServer, wait_exit
from tests.fixtures_mlflow import MlflowRegistry
from tests.serving_envs import ensure

pytestmark = [pytest.mark.serving, pytest.mark.timeout(900)]

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]
FLAT = [v for row in ROWS for v in row]
PAYLOAD = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": FLAT}]}


@pytest.fixture(scope="module")
def mlserver_env() -> Path:
    path, seconds = ensure("mlserver")
    if seconds:
        print(f"built the MLServer environment in {seconds:.0f} s")
    return path


@pytest.fixture
def mlserver(mlserver_env: Path, tmp_path: Path) -> Iterator[MlServer]:
    server = MlServer(tmp_path / "mlserver")
    yield server
    server.kill()


def oip(server: MlServer, **endpoint: object) -> OipAdapter:
    settings = parse_settings(
        {"endpoints": [{"name": "ep", "url": server.url, "adapter": "oip", "timeout": 5, **endpoint}]}
    )
    return OipAdapter(settings.endpoints[0])


async def test_mlserver_watched_end_to_end_kill_restart_new_version(
    mlserver: MlServer, mlflow_registry: MlflowRegistry, sink: Sink, tmp_path: Path
) -> None:
    mlserver.deploy("2", c=1.0)
    mlserver.start().wait_ready()
    endpoint = {
        "url": mlserver.url,
        "adapter": "oip",
        "model": "iris",
        "alias": "production",
        "metrics_url": mlserver.metrics_url,
    }
    rules = [{"rule": "version_mismatch", "for": 0}]
    registry = {"tracking_uri": mlflow_registry.tracking_uri, "refresh": 1}
    async with EngineRun(tmp_path, endpoint, sink.url, registry=registry, rules=rules) as run:
        # The synthetic request is the registry's serving example, sent as a V2 tensor.
        await run.until(
            lambda s: s.health == "up" and s.served_version == "2" and s.expected_version == "2",
            "MLServer up, serving v2 as the registry expects",
            timeout=90,
        )
        await run.until(
            lambda s: s.rps is not None and s.rps > 0 and s.latency_source == "metrics",
            "throughput and latency read from MLServer's metrics",
        )
        assert run.snap.error_ratio == 0.0
        # Failed inferences count as errors (MLServer's failure counter).
        bad = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1.0, 2.0, 3.0]}]}
        for _ in range(20):
            # One connection each: MLServer closes the connection after an inference that raised.
            async with httpx.AsyncClient() as client:
                answer = await client.post(f"{mlserver.url}/v2/models/iris/infer", json=bad)
            assert answer.status_code >= 400
        await run.until(lambda s: (s.error_ratio or 0) > 0, "failed inferences in the error ratio")

        mlserver.kill()
        await run.until(lambda s: s.health == "down", "down after the kill")
        await async_wait_for(
            lambda: any("[FIRING] ep: endpoint down" in t for t in sink.titles()), 20, "the down page"
        )

        mlserver.deploy("3", c=0.05)  # what a deploy of the next version does: new files, restart
        mlserver.start().wait_ready()
        await run.until(lambda s: s.health != "down" and s.served_version == "3", "serving v3", timeout=90)
        await async_wait_for(
            lambda: any("[RESOLVED] ep" in t and "down" in t for t in sink.titles()), 20, "the resolve"
        )
        await async_wait_for(
            lambda: any("[FIRING] ep: serves the wrong model version" in t for t in sink.titles()),
            20,
            "the version mismatch page",
        )
        assert run.snap.version_mismatch and run.snap.health == "degraded"
    assert "loading" not in run.healths, run.healths  # MLServer binds its port only once loaded


async def test_mlserver_that_exits_0_when_its_model_fails_to_load_is_down(
    mlserver: MlServer, sink: Sink, tmp_path: Path
) -> None:
    mlserver.deploy("2", broken=True)
    mlserver.start()
    assert wait_exit(mlserver) == 0, "MLServer no longer exits 0 on a broken model: revisit this test"
    endpoint = {"url": mlserver.url, "adapter": "oip", "model": "iris", "payload": PAYLOAD}
    async with EngineRun(tmp_path, endpoint, sink.url) as run:
        await run.until(lambda s: s.health == "down" and s.consecutive_failures >= 2, "down")
        await async_wait_for(
            lambda: any("[FIRING] ep: endpoint down" in t for t in sink.titles()), 20, "the down page"
        )
        assert "connection" in (run.snap.last_error or "")
    assert run.healths[-1] == "down" and "up" not in run.healths


async def test_oip_protocol_against_mlserver(mlserver: MlServer) -> None:
    mlserver.deploy("2")
    mlserver.start().wait_ready()
    async with new_http_session() as http:
        adapter = oip(mlserver, model="iris", payload=PAYLOAD)
        result = await adapter.probe(http)
        assert (result.ok, result.valid, result.error) == (True, True, None)
        assert result.served_version == "2" and adapter.stack == "mlserver"
        assert result.latency is not None and result.latency > 0

        # Without a payload and with no inputs declared in the metadata, the probe stops at readiness;
        # the version then comes from the repository index (MLServer's metadata lists no versions).
        bare = oip(mlserver, model="iris")
        result = await bare.probe(http)
        assert (result.ok, result.valid, result.served_version) == (True, None, "2")

        # A pinned version that exists, and one that does not (loading, then down).
        result = await oip(mlserver, model="iris", served_version="2", payload=PAYLOAD).probe(http)
        assert (result.ok, result.valid) == (True, True)
        missing = oip(mlserver, model="iris", served_version="9", payload=PAYLOAD, load_timeout=0.3)
        first = await missing.probe(http)
        assert (first.ok, first.loading) == (False, True) and "not ready" in (first.error or "")
        later, deadline = first, time.monotonic() + 30
        while later.loading and time.monotonic() < deadline:  # probe until the load window has run out
            later = await missing.probe(http)
        assert not later.ok and not later.loading and "still not ready after" in (later.error or "")

        # A model taken out of service while the server stays live is loading, then ready again.
        unload = await http.post(f"{mlserver.url}/v2/repository/models/iris/unload")
        assert unload.status == 200
        result = await adapter.probe(http)
        assert (result.ok, result.loading) == (False, True), result
        load = await http.post(f"{mlserver.url}/v2/repository/models/iris/load")
        assert load.status == 200
        result = await adapter.probe(http)
        assert (result.ok, result.valid) == (True, True), result

        # The default metric names read MLServer's series: its inference counters of this model (three
        # inferences above), and the REST latency of the unversioned infer route only (the pinned
        # probe used the versioned one; readiness and metadata reads are not inferences).
        names = adapter.metric_names()
        sample = await scrape(http, mlserver.metrics_url, names, 5.0)
        assert (sample.requests, sample.errors, sample.buckets[-1][1]) == (3, 0, 2)

        # A well-formed answer is checked: a missing model is an HTTP error, not a valid prediction.
        wrong = await oip(mlserver, model="nope", payload=PAYLOAD, load_timeout=60).probe(http)
        assert not wrong.ok and wrong.loading and "model nope not ready" in (wrong.error or "")
