"""Adapter for TorchServe: the inference API, the management API and the `ts_*` metrics.

`/ping` keeps saying Healthy while a model's workers crash-loop, so each probe also reads the
management API (`management_url`, `GET /models/{name}[/{version}]`): a model with no READY worker is
loading (for at most `load_timeout`), then down; the description's `modelVersion` is the served
version. With a `payload`, each probe is a real `POST /predictions/{name}[/{version}]` and its latency
the probe's; without one, `/ping`'s.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp

from mlops_console.config import EndpointSettings, MetricNames
from mlops_console.core.adapters import Adapter, ProbeResult, describe_exception, too_large
from mlops_console.core.jsonhttp import Deadline, request_json
from mlops_console.core.readiness import LoadWatch

# TorchServe counts requests per model and sums their latency in microseconds (a counter, not a
# histogram): throughput from the counter, latency percentiles from the probes. It has no per-model
# failure counter, so the error ratio reads 0 unless `metrics` names one.
TORCHSERVE_METRICS = MetricNames(
    requests="ts_inference_requests_total", latency="ts_inference_latency_microseconds", match={}
)


def workers_of(description: Any) -> tuple[str | None, list[str]]:
    """(modelVersion, worker statuses) from a `GET /models/{name}` answer, a list of one model."""
    model = description[0] if isinstance(description, list) and description else description
    if not isinstance(model, dict):
        return None, []
    version = model.get("modelVersion")
    workers = model.get("workers")
    listed = workers if isinstance(workers, list) else []
    statuses = [str(w.get("status", "")).upper() for w in listed if isinstance(w, dict)]
    return (str(version) if version not in (None, "") else None), statuses


class TorchserveAdapter(Adapter):
    name = "torchserve"

    def __init__(self, endpoint: EndpointSettings) -> None:
        super().__init__(endpoint)
        self.model = endpoint.served_model or endpoint.model
        self.watch = LoadWatch(endpoint.load_timeout)
        self.payload: bytes | None = None
        if endpoint.payload is not None:
            raw = endpoint.payload if isinstance(endpoint.payload, str) else json.dumps(endpoint.payload)
            self.payload = raw.encode()

    def stack_metrics(self) -> MetricNames:
        if self.model is None:
            return TORCHSERVE_METRICS
        return TORCHSERVE_METRICS.model_copy(update={"match": {"model_name": self.model}})

    def _route(self, prefix: str) -> str:
        assert self.model is not None
        route = f"{prefix}/{quote(self.model, safe='')}"
        version = self.endpoint.served_version
        return f"{route}/{quote(version, safe='')}" if version else route

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        base, left = self.endpoint.url, Deadline(self.endpoint.timeout)
        route, version = "/ping", None
        try:
            ping = await request_json(http, "GET", base, route, left())
            result = ProbeResult(
                ok=ping.ok, latency=ping.answer.latency, status=ping.status, error=ping.problem
            )
            if self.model is not None and self.endpoint.management_url:
                route = self._route("/models")
                described = await request_json(http, "GET", self.endpoint.management_url, route, left())
                if not described.ok:
                    why = described.problem or f"{route} answered no model description"
                    return self.watch.loading(ProbeResult(ok=False, status=described.status), why)
                version, statuses = workers_of(described.data)
                if "READY" not in statuses:
                    why = f"no worker of {self.model} is READY ({', '.join(statuses) or 'no workers'})"
                    return self.watch.loading(ProbeResult(ok=False, status=described.status), why)
            if not result.ok:
                return result
            if self.payload is not None and self.model is not None:
                route = self._route("/predictions")
                predicted = await request_json(http, "POST", base, route, left(), self.payload)
                result = ProbeResult(
                    ok=predicted.status == 200, latency=predicted.answer.latency, status=predicted.status
                )
                if predicted.answer.redirect is not None or predicted.status != 200:
                    result.error = predicted.problem
                    return result
                if predicted.answer.truncated:
                    result.error = f"{too_large()} from {route}: prediction not checked"
                else:
                    # TorchServe handlers answer in any format; JSON that does not parse is invalid.
                    result.valid = predicted.problem is None
                    result.error = predicted.problem
        except Exception as exc:
            if isinstance(exc, TimeoutError) and self.watch.hang_is_loading:
                return self.watch.loading(ProbeResult(ok=False), f"{route} timed out")
            if isinstance(exc, aiohttp.ClientConnectorError):
                self.watch.unreachable()
            return ProbeResult(ok=False, error=f"{route}: {describe_exception(exc)}")
        self.watch.ready()
        result.served_version = version
        return result
