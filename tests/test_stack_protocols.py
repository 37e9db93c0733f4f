"""Stacks that cannot run here, and the edges real servers will not show on demand, on loopback:
Triton's Open Inference Protocol answers and metric names (recorded from its documented responses),
the engine's `loading` state against a server whose model is not ready, the scrape of stacks that
count failures apart or label latency differently, and adapter metric defaults under user overrides."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mlops_console.config import MetricNames, parse_settings
from mlops_console.core.adapters import ProbeResult, create_adapter, new_http_session
from mlops_console.core.promscrape import MetricsError, reduce_exposition
from mlops_console.core.readiness import LoadWatch
from mlops_console_plugins.oip_adapter import MLSERVER_METRICS, OipAdapter, check_outputs
from tests._loopback import Sink, async_wait_for, free_port
from tests._stacks import EngineRun

# Triton 2.x answers, as its protocol documentation and metrics page show them.
TRITON_SERVER = {"name": "triton", "version": "2.50.0", "extensions": ["classification", "model_repository"]}
TRITON_METADATA = {
    "name": "densenet",
    "versions": ["1"],
    "platform": "onnxruntime_onnx",
    "inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "OUTPUT0", "datatype": "FP32", "shape": [-1, 3]}],
}


def triton_metrics(success: int, failure: int) -> str:
    return f"""# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{{model="densenet",version="1"}} {success}
nv_inference_request_success{{model="other",version="1"}} 1000
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{{model="densenet",reason="BACKEND",version="1"}} {failure}
nv_inference_request_failure{{model="densenet",reason="REJECTED",version="1"}} 1
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{{model="densenet",version="1"}} {success}
# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds
# TYPE nv_inference_request_duration_us counter
nv_inference_request_duration_us{{model="densenet",version="1"}} {success * 1500}
"""


class OipServer:
    """A loopback Open Inference Protocol server (Triton's answers) whose model a test makes ready or
    not, and which can be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready = True
        self.delay = 0.0
        """Seconds every answer waits."""
        self.success = self.failure = 0
        self.infer_bodies: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> OipServer:
        app = web.Application(middlewares=[self._slow])
        app.router.add_get("/v2", self._json(TRITON_SERVER))
        app.router.add_get("/v2/health/live", self._json(None))
        app.router.add_get("/v2/health/ready", self._ready)
        app.router.add_get("/v2/models/densenet/ready", self._ready)
        app.router.add_get("/v2/models/densenet", self._json(TRITON_METADATA))
        app.router.add_post("/v2/models/densenet/infer", self._infer)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _slow(self, request: web.Request, handler: Any) -> web.StreamResponse:
        await asyncio.sleep(self.delay)
        return await handler(request)

    @staticmethod
    def _json(body: Any) -> Any:
        async def handle(request: web.Request) -> web.Response:
            return web.Response() if body is None else web.json_response(body)

        return handle

    async def _ready(self, request: web.Request) -> web.Response:
        if self.ready:
            return web.Response()
        return web.json_response({"error": "Request for unknown model: 'densenet' is not ready"}, status=400)

    async def _infer(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.infer_bodies.append(body)
        rows = body["inputs"][0]["shape"][0]
        self.success += 1
        output = {"name": "OUTPUT0", "datatype": "FP32", "shape": [rows, 3], "data": [0.1, 0.2, 0.7] * rows}
        return web.json_response({"model_name": "densenet", "model_version": "1", "outputs": [output]})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=triton_metrics(self.success, self.failure))


@pytest.fixture
async def triton() -> AsyncIterator[OipServer]:
    server = await OipServer().start()
    yield server
    await server.stop()


def adapter_for(**endpoint: Any) -> Any:
    settings = parse_settings({"endpoints": [{"name": "ep", "timeout": 2, **endpoint}]})
    return create_adapter(settings.endpoints[0])


# -- Triton through the oip adapter ---------------------------------------------------------------------


async def test_oip_speaks_to_triton_from_its_metadata_alone(triton: OipServer) -> None:
    adapter = adapter_for(url=triton.url, adapter="oip", served_model="densenet")
    async with new_http_session() as http:
        result = await adapter.probe(http)
    assert (result.ok, result.valid, result.error, result.served_version) == (True, True, None, "1")
    assert adapter.stack == "triton"
    # The request was built from the declared inputs: unknown dimensions as 1, zeros of the datatype.
    assert triton.infer_bodies == [
        {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [0.0] * 4}]}
    ]
    names = adapter.metric_names()
    assert (names.requests, names.failures, names.match) == (
        "nv_inference_request_success",
        "nv_inference_request_failure",
        {"model": "densenet"},
    )


async def test_triton_metric_names_give_throughput_and_errors_latency_from_probes(
    triton: OipServer, sink: Sink, tmp_path: Path
) -> None:
    endpoint = {
        "url": triton.url,
        "adapter": "oip",
        "served_model": "densenet",
        "metrics_url": f"{triton.url}/metrics",
        "interval": 0.2,
    }
    async with EngineRun(tmp_path, endpoint, sink.url) as run:
        triton.failure = 0
        await run.until(lambda s: s.health == "up" and s.rps is not None and s.rps > 0, "Triton traffic")
        triton.failure = 400  # a burst of failed inferences of this model (another model's do not count)
        await run.until(lambda s: (s.error_ratio or 0) > 0.5, "Triton's failures in the error ratio")
        snap = run.snap
        assert snap.latency_source == "probe" and snap.p95 is not None  # no histogram from Triton


async def test_a_probe_keeps_within_its_timeout_across_its_requests(triton: OipServer) -> None:
    """Live, ready and infer each answer within the timeout, together they do not: a probe gets one
    timeout in all, not one per request (the engine cuts a probe off at timeout + 1 s)."""
    adapter = adapter_for(url=triton.url, adapter="oip", served_model="densenet", timeout=1.0)
    async with new_http_session() as http:
        assert (await adapter.probe(http)).ok  # seen ready, so a timeout now is not a load
        triton.delay = 0.4  # live, ready and infer: 1.2 s in all
        result = await adapter.probe(http)
    assert not result.ok and not result.loading
    assert result.error is not None and result.error.endswith("timed out"), result.error


def test_triton_exposition_reduces_per_model() -> None:
    names = adapter_for(url="http://127.0.0.1:1", adapter="oip", served_model="densenet")
    names.stack = "triton"
    sample = reduce_exposition(triton_metrics(12, 3), names.metric_names(), 0.0)
    assert (sample.requests, sample.errors, sample.buckets) == (16, 4, ())


def test_outputs_are_checked_for_shape_and_rows() -> None:
    good = {"outputs": [{"name": "o", "datatype": "FP32", "shape": [2, 1], "data": [1, 2]}]}
    assert check_outputs(good, 2) is None
    assert check_outputs(good, 3) == "expected 3 rows of output, got shape [2, 1]"
    assert check_outputs({"outputs": []}, None) == "infer answer has no `outputs` list"
    assert check_outputs({"error": "x"}, None) == "infer answer has no `outputs` list"
    no_data = {"outputs": [{"name": "o", "shape": [1]}]}
    assert check_outputs(no_data, None) == "output 'o' has no `data` list"


# -- loading, through the engine ------------------------------------------------------------------------


async def test_a_model_that_is_not_ready_is_loading_then_down_and_pages_once(
    triton: OipServer, sink: Sink, tmp_path: Path
) -> None:
    triton.ready = False
    endpoint = {"url": triton.url, "adapter": "oip", "served_model": "densenet", "load_timeout": 2.0}
    async with EngineRun(tmp_path, endpoint, sink.url) as run:
        await run.until(lambda s: s.health == "loading", "loading")
        snap = run.snap
        assert snap.consecutive_failures == 0 and snap.last_error is not None
        assert snap.last_error.startswith("loading: model densenet not ready (HTTP 400")
        assert not await run.alerts(), "loading must not page"
        await run.until(lambda s: s.health == "down", "down once load_timeout ran out")
        await async_wait_for(lambda: [t for t in sink.titles() if "endpoint down" in t], 20, "page")
        triton.ready = True
        await run.until(lambda s: s.health == "up", "up once the model is ready")
        await async_wait_for(lambda: [t for t in sink.titles() if "[RESOLVED]" in t], 20, "resolve")
    assert [t.split(":")[0] for t in sink.titles()] == ["[FIRING] ep", "[RESOLVED] ep"]


async def test_a_server_back_from_an_outage_but_still_loading_does_not_resolve_down(
    triton: OipServer, sink: Sink, tmp_path: Path
) -> None:
    endpoint = {"url": triton.url, "adapter": "oip", "served_model": "densenet", "load_timeout": 60}
    async with EngineRun(tmp_path, endpoint, sink.url) as run:
        await run.until(lambda s: s.health == "up", "up")
        await triton.stop()
        await async_wait_for(lambda: [t for t in sink.titles() if "endpoint down" in t], 20, "the page")
        triton.ready = False
        await triton.start()  # back on the same port, model loading
        await run.until(lambda s: s.health == "loading", "loading after the restart")
        probes = run.snap.probes
        await run.until(lambda s: s.probes >= probes + 4, "a few more probes while loading")
        assert [a.state for a in await run.alerts()] == ["firing"], "loading is not recovery"
        assert not [t for t in sink.titles() if "[RESOLVED]" in t]
        triton.ready = True
        await run.until(lambda s: s.health == "up", "up")
        await async_wait_for(lambda: [t for t in sink.titles() if "[RESOLVED]" in t], 20, "resolve")


async def test_a_restarted_watcher_does_not_resolve_an_adopted_down_alert_while_loading(
    triton: OipServer, sink: Sink, tmp_path: Path
) -> None:
    endpoint = {"url": triton.url, "adapter": "oip", "served_model": "densenet", "load_timeout": 60}
    await triton.stop()
    async with EngineRun(tmp_path, endpoint, sink.url):
        await async_wait_for(lambda: [t for t in sink.titles() if "endpoint down" in t], 20, "the page")
    triton.ready = False
    await triton.start()
    async with EngineRun(tmp_path, endpoint, sink.url) as second:  # adopts the open alert
        await second.until(lambda s: s.health == "loading", "loading")
        probes = second.snap.probes
        # Past the adoption window (three intervals): an answer would have resolved it by now.
        await second.until(lambda s: s.probes >= probes + 6, "more probes while loading")
        assert [a.state for a in await second.alerts()] == ["firing"]
        triton.ready = True
        await second.until(lambda s: s.health == "up", "up")
        await async_wait_for(lambda: [t for t in sink.titles() if "[RESOLVED]" in t], 20, "the resolve")
    assert len([t for t in sink.titles() if t.startswith("[FIRING]")]) == 1


def test_load_watch_window_and_hangs() -> None:
    now = [100.0]
    watch = LoadWatch(10.0, clock=lambda: now[0])
    assert watch.hang_is_loading  # never seen ready: a hang may be a load
    first = watch.loading(ProbeResult(ok=False), "why")
    assert (first.ok, first.loading, first.error) == (False, True, "loading: why")
    now[0] = 109.9
    assert watch.loading(ProbeResult(ok=False), "why").loading
    now[0] = 110.0
    late = watch.loading(ProbeResult(ok=False), "why")
    assert not late.loading and late.error == "still not ready after 10 s (load_timeout 10 s): why"
    watch.ready()
    assert not watch.hang_is_loading  # served since it started: a hang now is an outage
    assert watch.loading(ProbeResult(ok=False), "again").loading  # a new window after being ready
    watch.unreachable()
    assert watch.hang_is_loading


# -- metric names ---------------------------------------------------------------------------------------


def test_endpoint_metrics_keys_override_the_adapter_defaults_one_by_one() -> None:
    adapter = adapter_for(
        url="http://127.0.0.1:1", adapter="oip", model="iris", metrics={"match": {"x": "1"}}
    )
    assert isinstance(adapter, OipAdapter)
    names = adapter.metric_names()
    assert names.match == {"x": "1"}
    assert (names.requests, names.failures) == (MLSERVER_METRICS.requests, MLSERVER_METRICS.failures)
    assert names.latency_match == {"path": "/v2/models/{model_name}/infer"}
    # The mlflow adapter keeps the defaults it always had.
    assert adapter_for(url="http://127.0.0.1:1").metric_names() == MetricNames()


def test_scrape_with_a_failure_counter_and_latency_labelled_apart() -> None:
    text = """# TYPE model_infer_request_success counter
model_infer_request_success_total{model="iris",version="None"} 8.0
model_infer_request_success_total{model="other",version="None"} 50.0
# TYPE model_infer_request_failure counter
model_infer_request_failure_total{model="iris",version="None"} 2.0
# TYPE rest_server_request_duration_seconds histogram
rest_server_request_duration_seconds_bucket{le="0.1",method="POST",path="/v2/models/{model_name}/infer"} 9.0
rest_server_request_duration_seconds_bucket{le="+Inf",method="POST",path="/v2/models/{model_name}/infer"} 10.0
rest_server_request_duration_seconds_bucket{le="0.1",method="GET",path="/v2/health/live"} 500.0
rest_server_request_duration_seconds_bucket{le="+Inf",method="GET",path="/v2/health/live"} 500.0
"""
    names = MLSERVER_METRICS.model_copy(update={"match": {"model": "iris"}})
    sample = reduce_exposition(text, names, 0.0)
    assert (sample.requests, sample.errors) == (10.0, 2.0)
    assert sample.buckets == ((0.1, 9.0), (float("inf"), 10.0))


def test_a_declared_counter_nothing_counted_yet_is_zero_but_a_wrong_match_is_an_error() -> None:
    declared = (
        "# HELP model_infer_request_success_total Number of successful inference requests.\n"
        "# TYPE model_infer_request_success_total counter\n"
    )
    sample = reduce_exposition(declared, MLSERVER_METRICS, 0.0)
    assert (sample.requests, sample.errors) == (0.0, 0.0)
    counted = declared + 'model_infer_request_success_total{model="iris"} 3.0\n'
    wrong = MLSERVER_METRICS.model_copy(update={"match": {"model": "irsi"}})
    with pytest.raises(MetricsError, match="no model_infer_request_success_total series matching"):
        reduce_exposition(counted, wrong, 0.0)


def test_registry_example_becomes_one_v2_tensor() -> None:
    adapter = adapter_for(url="http://127.0.0.1:1", adapter="oip", model="iris")
    assert adapter.wants_example
    adapter.set_example({"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2], [3.5, 4]]}})
    assert json.loads(adapter._payload()) == {
        "inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [1.0, 2, 3.5, 4]}]
    }
    adapter.set_example({"dataframe_split": {"columns": ["a"], "data": [["text"]]}})
    assert adapter._payload() is None  # not numbers: no tensor, no guess


# -- an adapter that learns which series to read by probing ----------------------------------------------
class BentoShaped:
    """A loopback server with BentoML's routes and metric names; `/metrics` counts its health routes
    too, so a scrape that reads every route reads many more requests than the inference route saw."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.predictions = 500  # traffic before the console started watching
        self._runner: web.AppRunner | None = None

    async def start(self) -> BentoShaped:
        app = web.Application()
        app.router.add_get("/livez", self._ok)
        app.router.add_get("/readyz", self._ok)
        schema = {"routes": [{"route": "/predict", "input": {"type": "object"}, "output": {"type": "array"}}]}

        async def described(request: web.Request) -> web.Response:
            return web.json_response(schema)

        app.router.add_get("/schema.json", described)
        app.router.add_post("/predict", self._predict)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    async def _ok(request: web.Request) -> web.Response:
        return web.Response()

    async def _predict(self, request: web.Request) -> web.Response:
        self.predictions += 1
        return web.json_response([0])

    async def _metrics(self, request: web.Request) -> web.Response:
        name = "bentoml_service_request_total"
        labels = 'http_response_code="200",service_name="iris",service_version="2"'
        return web.Response(
            text=f"# TYPE {name} counter\n"
            f'{name}{{endpoint="/readyz",{labels}}} 20000\n'
            f'{name}{{endpoint="/predict",{labels}}} {self.predictions}\n'
        )


async def test_status_reads_the_route_the_probe_found_not_a_spike_from_every_route(tmp_path: Path) -> None:
    from mlops_console.core.engine import Engine
    from mlops_console.core.store import Store

    server = await BentoShaped().start()
    try:
        endpoint = {
            "name": "ep",
            "url": server.url,
            "adapter": "bentoml",
            "metrics_url": f"{server.url}/metrics",
        }
        settings = parse_settings({"store": {"path": str(tmp_path / "c.db")}, "endpoints": [endpoint]})
        snap = (await Engine(settings, Store(settings.store.path, read_only=True)).probe_once()).endpoints[0]
    finally:
        await server.stop()
    # One prediction (the probe's) at most between the two samples; reading every route first and
    # the learned route second made the drop look like a restart: 501 requests in a second.
    assert snap.health == "up" and snap.served_version == "2"
    assert snap.rps is not None and snap.rps < 5, snap.rps


def test_samples_of_another_selection_start_the_series_afresh() -> None:
    from mlops_console.core.endpoint_state import EndpointState
    from mlops_console.core.series import MetricsSample

    settings = parse_settings(
        {"endpoints": [{"name": "ep", "url": "http://127.0.0.1:9", "adapter": "bentoml"}]}
    )
    state = EndpointState(settings.endpoints[0])
    every_route, one_route = MetricNames(match={}), MetricNames(match={"endpoint": "/predict"})
    state.add_metrics(MetricsSample(at=1000.0, requests=20500.0, errors=0.0), every_route)
    state.add_metrics(MetricsSample(at=1010.0, requests=510.0, errors=0.0), one_route)
    state.add_metrics(MetricsSample(at=1020.0, requests=530.0, errors=0.0), one_route)
    assert state.series.metric_stats(1020.0, 60.0).rps == pytest.approx(2.0)  # 20 requests in 10 s
    state.add_metrics(MetricsSample(at=1030.0, requests=550.0, errors=0.0), one_route)
    assert state.series.metric_stats(1030.0, 60.0).rps == pytest.approx(2.0)  # same selection: kept
