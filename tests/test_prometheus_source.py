"""Figures read from Prometheus, against a fault-injecting stand-in of its HTTP API on loopback:
one query per signal for every endpoint, and every way an answer can be unusable (unreachable, slow,
`bad_data`, partial, not JSON) gives one clear state, the last good values marked stale, and nothing
for the rules to page on. The same engine against a real Prometheus is in `test_prometheus_real`."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.adapters import new_http_session
from mlops_console.core.conditions import evaluate
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.series import RPS_KEEP, RPS_STEP
from mlops_console.core.sources.prometheus import BACKFILL_SLICE, PrometheusSource
from tests._loopback import free_port, serve, stop_serving

INSTANCES = {"a": "10.0.0.1:8080", "b": "10.0.0.2:8080", "c": "10.0.0.3:8080"}
RPS = {"10.0.0.1:8080": 10.0, "10.0.0.2:8080": 20.0, "10.0.0.3:8080": 40.0}


class FakePrometheus:
    """Answers `/api/v1/query` like Prometheus for the console's queries; `mode` injects faults."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.mode = "ok"
        self.queries: list[str] = []
        self.ranges = 0
        self.headers: list[str | None] = []
        self.in_flight = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                fake.in_flight += 1
                fake.queries.append(query)
                fake.headers.append(self.headers.get("Authorization"))
                ranged = urlparse(self.path).path == "/api/v1/query_range"
                status, body = (
                    fake.answer_range(parse_qs(urlparse(self.path).query))
                    if ranged and fake.mode == "ok"
                    else fake.answer(query)
                )
                fake.ranges += ranged
                if fake.mode == "slow" or (fake.mode == "mixed" and "histogram_quantile" in query):
                    time.sleep(1.0)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (the slow case)
                finally:
                    fake.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self._server = serve(self.port, Handler)

    def answer_range(self, params: dict[str, list[str]]) -> tuple[int, bytes]:
        """The steps asked for within the last ten minutes (what this Prometheus remembers)."""
        start, end, step = (float(params[key][0]) for key in ("start", "end", "step"))
        oldest = time.time() - 600
        steps = [start + step * i for i in range(int((end - start) // step) + 1)]
        result = [
            {"metric": {"instance": instance}, "values": [[at, str(rps)] for at in steps if at >= oldest]}
            for instance, rps in RPS.items()
        ]
        return 200, json.dumps(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
        ).encode()

    def answer(self, query: str) -> tuple[int, bytes]:
        if self.mode == "bad_data" or (self.mode == "mixed" and "histogram_quantile" not in query):
            return 400, json.dumps(
                {"status": "error", "errorType": "bad_data", "error": "parse error"}
            ).encode()
        if self.mode == "garbage":
            return 200, b"<html>\x1b[31m[bold]proxy error</html>"
        if self.mode == "http500":
            return 503, b"Service Unavailable"
        now = time.time()
        result = []
        for instance, rps in RPS.items():
            if "histogram_quantile(0.5," in query:
                value = 0.010
            elif "histogram_quantile(0.95," in query:
                value = 0.050
            elif "histogram_quantile(0.99," in query:
                value = 0.090
            elif query.startswith("max by (instance) (up{"):
                value = 1.0
            elif '!~"[123].*"' in query:
                value = rps / 10
            else:
                value = rps
            result.append({"metric": {"instance": instance}, "value": [now, str(value)]})
        document: dict[str, Any] = {"status": "success", "data": {"resultType": "vector", "result": result}}
        if self.mode == "partial":
            document["warnings"] = ["remote read from store-2 failed"]
        return 200, json.dumps(document).encode()

    def stop(self) -> None:
        stop_serving(self._server)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.stop()


def settings_for(url: str, extra: str = "") -> Any:
    import tomllib

    endpoints = "".join(
        f'[[endpoints]]\nname = "{name}"\nurl = "http://{instance}"\n' for name, instance in INSTANCES.items()
    )
    text = f'[prometheus]\nurl = "{url}"\ntimeout = 5\ndefault_source = "prometheus"\n{extra}\n{endpoints}'
    return parse_settings(tomllib.loads(text), known_adapters={"mlflow"})


def states_of(settings: Any) -> list[EndpointState]:
    return [
        EndpointState(e, source=settings.source_of(e), health_source="prometheus") for e in settings.endpoints
    ]


def run_round(source: PrometheusSource) -> None:
    async def go() -> None:
        async with new_http_session() as http:
            await source.evaluate(http, None)

    asyncio.run(go())


def test_one_query_per_signal_answers_for_every_endpoint(prometheus: FakePrometheus) -> None:
    prometheus.mode = "ok"
    settings = settings_for(prometheus.url, 'bearer_token = "s3cret"')
    states = states_of(settings)
    source = PrometheusSource(settings, {s.name: s for s in states})
    prometheus.queries.clear()
    run_round(source)
    # requests, errors, p50, p95, p99 and up: six queries for three endpoints (and for three thousand),
    # and on the first round the range queries that bring their throughput history, in slices.
    slices = math.ceil(RPS_KEEP / (BACKFILL_SLICE + RPS_STEP))
    assert slices > 1 and prometheus.ranges == slices, prometheus.ranges
    assert len(prometheus.queries) == 6 + slices, prometheus.queries
    history = states[2].series.rps_history
    assert len(history) >= 60 and history[0][1] == 40.0  # ten minutes back
    times = [at for at, _ in history]
    # The slices join up into one grid of steps: nothing twice, nothing missing.
    assert all(later - earlier == pytest.approx(RPS_STEP) for earlier, later in itertools.pairwise(times))
    assert states[2].series.throughput_baseline(time.time()) is not None
    prometheus.queries.clear()
    run_round(source)
    assert len(prometheus.queries) == 6 and prometheus.ranges == slices
    assert set(prometheus.headers) == {"Bearer s3cret"}
    by_name = {s.name: s.snapshot() for s in states}
    assert [by_name[n].rps for n in "abc"] == [10.0, 20.0, 40.0]
    assert by_name["b"].error_ratio == pytest.approx(0.1)
    assert (by_name["a"].p50, by_name["a"].p95, by_name["a"].p99) == (0.010, 0.050, 0.090)
    assert all(s.health == "up" and s.health_source == "prometheus" for s in by_name.values())
    assert by_name["a"].latency_source == "prometheus" and by_name["a"].stale is None
    assert source.state == "ok"


def test_figures_of_an_endpoint_probed_for_health_are_the_rounds(prometheus: FakePrometheus) -> None:
    """Its health comes from probes, not `up{}`: no probe follows the round, which still refreshes its
    figures (an endpoint whose `up{}` is read refreshes them once, as that reading is recorded)."""
    prometheus.mode = "ok"
    settings = settings_for(prometheus.url)
    probed, by_up = (
        EndpointState(settings.endpoints[0], source="prometheus", health_source="probe"),
        EndpointState(settings.endpoints[1], source="prometheus", health_source="prometheus"),
    )
    source = PrometheusSource(settings, {s.name: s for s in (probed, by_up)})
    run_round(source)
    shown = probed.snapshot()
    assert (shown.rps, shown.p95, shown.error_ratio, shown.latency_source) == (10.0, 0.050, 0.1, "prometheus")
    assert shown.health == "unknown" and probed.probes == 0  # no probe has run, and `up{}` is not its
    assert probed.reading(time.time()).rps == 10.0
    assert (by_up.snapshot().rps, by_up.snapshot().p95, by_up.snapshot().health) == (20.0, 0.050, "up")


def test_an_adapter_that_learns_its_stack_is_read_by_its_own_names_from_the_next_round(
    prometheus: FakePrometheus,
) -> None:
    """`oip` reads MLServer's series until its probes find Triton behind the endpoint, `bentoml` every
    route's until its schema names the endpoint's: from the round after, the queries sent are of the
    names learnt, not of the first ones kept for good."""
    import tomllib

    prometheus.mode = "ok"
    endpoints = "".join(
        f'[[endpoints]]\nname = "{name}"\nurl = "http://{INSTANCES[name]}"\nadapter = "{adapter}"\n'
        for name, adapter in (("a", "oip"), ("b", "bentoml"))
    )
    text = f'[prometheus]\nurl = "{prometheus.url}"\ntimeout = 5\ndefault_source = "prometheus"\n{endpoints}'
    settings = parse_settings(tomllib.loads(text), known_adapters={"oip", "bentoml"})
    oip, bento = (EndpointState(e, source="prometheus", health_source="probe") for e in settings.endpoints)
    source = PrometheusSource(settings, {s.name: s for s in (oip, bento)})
    for _ in range(2):
        prometheus.queries.clear()
        run_round(source)
        assert any(
            q.startswith("sum by (instance) (rate(model_infer_request_success_total{}")
            for q in prometheus.queries
        )
        assert "sum by (instance) (rate(bentoml_service_request_total{}[1m]))" in prometheus.queries
    oip.adapter.stack, bento.adapter.route = "triton", "/predict"  # what their probes found
    prometheus.queries.clear()
    run_round(source)
    sent = " ".join(prometheus.queries)
    assert "nv_inference_request_success{}" in sent and "model_infer" not in sent, prometheus.queries
    assert 'bentoml_service_request_total{endpoint="/predict"}' in sent, prometheus.queries
    assert "bentoml_service_request_total{}" not in sent, prometheus.queries
    assert (oip.snapshot().rps, bento.snapshot().rps) == (10.0, 20.0)


@pytest.mark.parametrize(
    ("mode", "shown"),
    [
        ("down", "unreachable: connection failed"),
        (
            "slow",
            "unreachable: timed out after 0.3 s "
            "(a large fleet or a busy Prometheus needs a longer [prometheus] timeout)",
        ),
        ("bad_data", "bad_data: parse error"),
        ("partial", "partial answer: remote read from store-2 failed"),
        ("garbage", "not Prometheus' JSON API"),
        ("http500", "HTTP 503"),
    ],
)
def test_unusable_answers_keep_last_values_stale_and_page_nothing(
    prometheus: FakePrometheus, mode: str, shown: str
) -> None:
    url = prometheus.url if mode != "down" else f"http://127.0.0.1:{free_port()}"
    prometheus.mode = "ok"
    settings = settings_for(prometheus.url)
    states = states_of(settings)
    source = PrometheusSource(settings, {s.name: s for s in states})
    run_round(source)
    a = states[0]
    # Half an hour of steady traffic behind it: a baseline a drop would be judged against.
    now = time.time()
    a.series.rps_history.clear()
    a.series.rps_history.extend((now - 1800 + 10 * i, 10.0) for i in range(178))
    before = a.snapshot()

    prometheus.mode = mode
    source.client = type(source.client)(url, 0.3 if mode == "slow" else 5.0)
    run_round(source)
    prometheus.mode = "ok"

    after = a.snapshot()
    assert shown in source.state, source.state
    assert after.stale is not None and shown in after.stale
    # The last good figures stay on screen, marked stale; health neither up-to-down nor unknown.
    assert (after.rps, after.p95, after.error_ratio) == (before.rps, before.p95, before.error_ratio)
    assert after.health == "up"
    reading = a.reading(time.time())
    assert reading.rps is None and reading.window.p95 is None and not reading.traffic_measured
    active = [c.rule for c in evaluate(settings, reading, a.detected) if c is not None and c.active]
    assert active == []

    source.client = type(source.client)(prometheus.url, 5.0)
    run_round(source)
    assert a.snapshot().stale is None and source.state == "ok"


def test_an_endpoint_missing_from_up_is_down_not_stale(prometheus: FakePrometheus) -> None:
    prometheus.mode = "ok"
    settings = settings_for(prometheus.url, "")
    settings.endpoints[0] = settings.endpoints[0].model_copy(update={"prometheus_id": "10.9.9.9:1"})
    states = states_of(settings)
    source = PrometheusSource(settings, {s.name: s for s in states})
    run_round(source)
    run_round(source)
    gone = states[0].snapshot()
    assert gone.health == "down" and gone.stale is None
    assert "no current up{instance='10.9.9.9:1'}" in (gone.last_error or "")
    assert gone.rps is None


def test_status_names_the_prometheus_problem(prometheus: FakePrometheus, tmp_path: Path) -> None:
    config = tmp_path / "console.toml"
    config.write_text(
        f'[store]\npath = "{tmp_path / "c.db"}"\n[prometheus]\nurl = "{prometheus.url}"\ntimeout = 5\n'
        '[[endpoints]]\nname = "a"\nurl = "http://10.0.0.1:8080"\nsource = "prometheus"\n'
    )
    prometheus.mode = "bad_data"
    try:
        ran = subprocess.run(
            [sys.executable, "-m", "mlops_console", "--config", str(config), "status"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        prometheus.mode = "ok"
    assert f"prometheus: {prometheus.url}: bad_data: parse error" in ran.stdout, ran.stdout + ran.stderr
    assert "stale: Prometheus" in ran.stdout
    # Health comes from `up{}` alone and Prometheus could not say: not "all well" (0), not "down" (1).
    assert ran.returncode == 4, ran.stdout + ran.stderr


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('[[endpoints]]\nname = "a"\nurl = "http://h:1"\nsource = "prometheus"\n', "endpoints[0].source"),
        ('[prometheus]\nurl = "http://h:9090"\ngroup_by = "in stance"\n', "prometheus.group_by"),
        (
            '[prometheus]\nurl = "http://h:9090"\n'
            '[prometheus.queries.mlflow]\nrequests = "sum(rate(x[1m]))"\n',
            "prometheus.queries.mlflow.requests: the query must group by {group}",
        ),
        ('[prometheus]\nurl = "h:9090"\n', "prometheus.url"),
        (
            '[prometheus]\nurl = "http://h:9090"\nbearer_token = "${NO_SUCH_PROM_TOKEN}"\n',
            "prometheus.bearer_token: environment variable ${NO_SUCH_PROM_TOKEN} is not set",
        ),
    ],
)
def test_prometheus_config_errors_name_the_key(body: str, problem: str) -> None:
    import tomllib

    from mlops_console.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        parse_settings(tomllib.loads(body), known_adapters={"mlflow"})
    assert any(problem in line for line in raised.value.problems), raised.value.problems


def test_a_failed_round_leaves_no_query_running(prometheus: FakePrometheus) -> None:
    """One query answers `bad_data` at once while the others are slow: the round ends when all have,
    so a slow Prometheus is never sent a new round on top of the last one's queries."""
    settings = settings_for(prometheus.url)
    states = states_of(settings)
    source = PrometheusSource(settings, {s.name: s for s in states})
    prometheus.mode = "mixed"
    left: list[int] = []

    async def go() -> None:
        async with new_http_session() as http:
            await source.evaluate(http, None)
            left.append(prometheus.in_flight)

    try:
        asyncio.run(go())
    finally:
        prometheus.mode = "ok"
    assert "bad_data" in source.state and all(s.stale for s in states)
    assert left == [0]
