"""Adapter for the Open Inference Protocol (KServe v2), spoken by MLServer, Triton, KServe and Seldon Core 2.

Each probe: `GET /v2/health/live` (the process answers), then the model's readiness
(`/v2/models/{name}[/versions/{v}]/ready`, or the server's `/v2/health/ready` when no model is named),
then a synthetic `POST .../infer` whose answer must carry a well-formed `outputs` list; its latency is
the probe's. The request body is the configured `payload`, else the registry's serving example turned
into one tensor, else zeros shaped like the inputs the model's metadata declares; with none of them the
probe stops at readiness. The served version comes from the infer answer's `model_version`, else the
metadata's `versions`, else the repository index. Which stack answers (`GET /v2`: `mlserver`,
`triton`) picks the default metric names.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from mlops_console.config import EndpointSettings, MetricNames
from mlops_console.core.adapters import Adapter, ProbeResult, describe_exception, too_large
from mlops_console.core.jsonhttp import Deadline, JsonAnswer, request_json
from mlops_console.core.readiness import LoadWatch

METADATA_EVERY = 10.0
"""Seconds between metadata (and version) reads: they change only when the model is reloaded."""

INFER_ROUTE = "/v2/models/{model_name}/infer"
MLSERVER_METRICS = MetricNames(
    requests="model_infer_request_success_total",
    failures="model_infer_request_failure_total",
    latency="rest_server_request_duration_seconds",
    match={},
    latency_match={"path": INFER_ROUTE},
)
TRITON_METRICS = MetricNames(
    requests="nv_inference_request_success",
    failures="nv_inference_request_failure",
    # Triton's `nv_inference_request_duration_us` is a running sum, not a histogram: no quantiles
    # from it, so latency percentiles come from the probes.
    latency="nv_inference_request_duration_us",
    match={},
)
_TENSOR_ZERO = {"BOOL": False, "BYTES": ""}


def _as_tensor(example: dict[str, Any]) -> dict[str, Any] | None:
    """An MLflow serving example (`dataframe_split`, `inputs`/`instances` lists of rows) as one V2
    tensor, for models that take a 2-D array of numbers (scikit-learn and most tabular runtimes)."""
    rows = None
    if isinstance(example.get("dataframe_split"), dict):
        rows = example["dataframe_split"].get("data")
    elif isinstance(example.get("instances"), list):
        rows = example["instances"]
    elif isinstance(example.get("inputs"), list) and not isinstance(example["inputs"][:1], dict):
        rows = example["inputs"]
    if not (isinstance(rows, list) and rows and all(isinstance(r, list) and r for r in rows)):
        return None
    width = len(rows[0])
    values = [v for row in rows for v in row]
    if any(len(r) != width for r in rows) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    ):
        return None
    datatype = "INT64" if all(isinstance(v, int) for v in values) else "FP64"
    tensor = {"name": "input-0", "shape": [len(rows), width], "datatype": datatype, "data": values}
    return {"inputs": [tensor]}


def _from_metadata(metadata: Any) -> dict[str, Any] | None:
    """Zeros shaped like the inputs the model declares (unknown dimensions as 1)."""
    inputs = metadata.get("inputs") if isinstance(metadata, dict) else None
    if not isinstance(inputs, list) or not inputs:
        return None
    tensors = []
    for spec in inputs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            return None
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.get("shape") or [1]]
        datatype = str(spec.get("datatype", "FP32"))
        zero = _TENSOR_ZERO.get(datatype, 0.0 if datatype.startswith("FP") else 0)
        size = 1
        for d in shape:
            size *= d
        tensors.append({"name": spec["name"], "shape": shape, "datatype": datatype, "data": [zero] * size})
    return {"inputs": tensors}


def check_outputs(data: Any, rows: int | None) -> str | None:
    """None if an infer answer is well formed, else what is wrong with it."""
    outputs = data.get("outputs") if isinstance(data, dict) else None
    if not isinstance(outputs, list) or not outputs:
        return "infer answer has no `outputs` list"
    for output in outputs:
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            return "infer answer has an output without a name"
        shape, values = output.get("shape"), output.get("data")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            return f"output {output['name']!r} has no valid `shape`"
        if not isinstance(values, list):
            return f"output {output['name']!r} has no `data` list"
    first = outputs[0]["shape"]
    if rows is not None and (not first or first[0] != rows):
        return f"expected {rows} rows of output, got shape {first}"
    return None


class OipAdapter(Adapter):
    name = "oip"

    def __init__(self, endpoint: EndpointSettings) -> None:
        super().__init__(endpoint)
        self.model = endpoint.served_model or endpoint.model
        self.version = endpoint.served_version
        self.watch = LoadWatch(endpoint.load_timeout)
        self.stack: str | None = None
        """What `GET /v2` said the server is (`mlserver`, `triton`...), once it answered."""
        self._configured: bytes | None = None
        if endpoint.payload is not None:
            raw = endpoint.payload if isinstance(endpoint.payload, str) else json.dumps(endpoint.payload)
            self._configured = raw.encode()
        self._example: dict[str, Any] | None = None
        self._declared: dict[str, Any] | None = None
        self._metadata_version: str | None = None
        self._served_version: str | None = None
        self._next_metadata = 0.0

    # -- what the engine asks --------------------------------------------------------------------------
    @property
    def wants_example(self) -> bool:
        return self.endpoint.payload is None and self.endpoint.model is not None

    def set_example(self, payload: dict[str, Any]) -> None:
        self._example = _as_tensor(payload)

    def stack_metrics(self) -> MetricNames:
        if self.stack == "triton":
            return TRITON_METRICS.model_copy(update={"match": {"model": self.model}} if self.model else {})
        if self.model is None:
            return MLSERVER_METRICS
        # MLServer labels its inference counters by model, its REST latency histogram by route.
        route = "/v2/models/{model_name}/versions/{model_version}/infer" if self.version else INFER_ROUTE
        return MLSERVER_METRICS.model_copy(
            update={"match": {"model": self.model}, "latency_match": {"path": route}}
        )

    # -- probing ---------------------------------------------------------------------------------------
    @property
    def _model_route(self) -> str:
        assert self.model is not None
        route = f"/v2/models/{quote(self.model, safe='')}"
        return f"{route}/versions/{quote(self.version, safe='')}" if self.version else route

    def _payload(self) -> bytes | None:
        if self._configured is not None:
            return self._configured
        body = self._example or self._declared
        return json.dumps(body).encode() if body else None

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        base, left = self.endpoint.url, Deadline(self.endpoint.timeout)
        route = "/v2/health/live"
        try:
            live = await request_json(http, "GET", base, route, left())
            if live.answer.redirect is not None or live.status != 200:
                return ProbeResult(
                    ok=False, latency=live.answer.latency, status=live.status, error=live.problem
                )
            if self.stack is None:
                await self._server_metadata(http, left)
            if self.model is None:
                route = "/v2/health/ready"
                ready = await request_json(http, "GET", base, route, left())
                if ready.status != 200:
                    return self.watch.loading(ProbeResult(ok=False, status=ready.status), "server not ready")
                self.watch.ready()
                return ProbeResult(ok=True, latency=ready.answer.latency, status=200)
            route = f"{self._model_route}/ready"
            ready = await request_json(http, "GET", base, route, left())
            if ready.status != 200:
                why = f"model {self.model} not ready (HTTP {ready.status} from {route})"
                return self.watch.loading(ProbeResult(ok=False, status=ready.status), why)
            await self._metadata(http, left)
            payload = self._payload()
            if payload is None:
                self.watch.ready()
                return ProbeResult(
                    ok=True, latency=ready.answer.latency, status=200, served_version=self._served_version
                )
            route = f"{self._model_route}/infer"
            answer = await request_json(http, "POST", base, route, left(), payload)
        except Exception as exc:
            return self._unanswered(exc, route)
        return self._judge(answer, payload)

    def _unanswered(self, exc: Exception, route: str) -> ProbeResult:
        if isinstance(exc, TimeoutError) and self.watch.hang_is_loading:
            # Accepted the connection, answered nothing in time, and has not been ready since it
            # started: what a server busy loading its model looks like.
            return self.watch.loading(ProbeResult(ok=False), f"{route} timed out")
        if isinstance(exc, aiohttp.ClientConnectorError):
            self.watch.unreachable()
            self.stack = None  # another process may come up on this port
            self._next_metadata = 0.0
        return ProbeResult(ok=False, error=f"{route}: {describe_exception(exc)}")

    def _judge(self, answer: JsonAnswer, payload: bytes) -> ProbeResult:
        result = ProbeResult(ok=answer.status == 200, latency=answer.answer.latency, status=answer.status)
        if answer.answer.redirect is not None or answer.status != 200:
            result.error = answer.problem
            return result
        self.watch.ready()
        if answer.answer.truncated:
            result.error = f"{too_large()} from the infer route: prediction not checked"
        elif answer.problem is not None:
            result.valid, result.error = False, answer.problem
        else:
            problem = check_outputs(answer.data, _rows(payload))
            result.valid, result.error = problem is None, problem
            version = answer.data.get("model_version") if isinstance(answer.data, dict) else None
            if isinstance(version, str | int) and str(version):
                self._served_version = str(version)
        result.served_version = self._served_version
        return result

    # -- metadata --------------------------------------------------------------------------------------
    async def _server_metadata(self, http: aiohttp.ClientSession, left: Deadline) -> None:
        try:
            server = await request_json(http, "GET", self.endpoint.url, "/v2", left())
        except Exception:
            return
        name = server.data.get("name") if isinstance(server.data, dict) else None
        self.stack = str(name).lower() if name else "unknown"

    async def _metadata(self, http: aiohttp.ClientSession, left: Deadline) -> None:
        """Declared inputs and the served version, re-read every `METADATA_EVERY` seconds."""
        now = time.monotonic()
        if now < self._next_metadata:
            return
        self._next_metadata = now + METADATA_EVERY
        try:
            metadata = await request_json(http, "GET", self.endpoint.url, self._model_route, left())
            if not metadata.ok:
                return
            self._declared = _from_metadata(metadata.data)
            versions = metadata.data.get("versions") if isinstance(metadata.data, dict) else None
            version = self.version
            if version is None and isinstance(versions, list) and len(versions) == 1:
                version = str(versions[0])
            if version is None:
                version = await self._indexed_version(http, left)
            if version is not None:
                self._served_version = version
        except Exception:  # version and inputs are best effort; readiness was already measured
            pass

    async def _indexed_version(self, http: aiohttp.ClientSession, left: Deadline) -> str | None:
        """The version the repository index says is READY for this model (one, or the highest)."""
        answer = await request_json(http, "POST", self.endpoint.url, "/v2/repository/index", left(), b"{}")
        if not answer.ok or not isinstance(answer.data, list):
            return None
        ready = [
            str(entry["version"])
            for entry in answer.data
            if isinstance(entry, dict)
            and entry.get("name") == self.model
            and entry.get("version") not in (None, "")
            and str(entry.get("state", "READY")).upper() == "READY"
        ]
        if not ready:
            return None
        return max(ready, key=lambda v: (v.isdigit(), int(v) if v.isdigit() else 0, v))


def _rows(payload: bytes) -> int | None:
    """Rows in a batch request (a first input of two or more dimensions): as many rows must come back."""
    try:
        shape = json.loads(payload)["inputs"][0]["shape"]
        return int(shape[0]) if len(shape) >= 2 else None
    except (ValueError, AttributeError, TypeError, IndexError, KeyError):
        return None
