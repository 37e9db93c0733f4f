"""Adapter for BentoML services (`bentoml serve`, 1.2 and later).

Each probe: `GET /livez`, `GET /readyz`, then a synthetic `POST` to one API route (`path`, else the
first route `/schema.json` lists) whose answer must be JSON, and a list as long as the request's batch
where the route's schema says it returns an array; its latency is the probe's. The request body is the
configured `payload`, else one built from the route's input schema: each field's example or default,
and for a single array-of-rows field the registry's serving example. BentoML accepts connections and
answers nothing while its service loads: a server that has not been ready since it started shows
`loading` for up to `load_timeout`. The served version is the bento's (`bentoml build --version`),
read from the `service_version` label of `/metrics` on the same port.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import aiohttp

from mlops_console.config import EndpointSettings, MetricNames
from mlops_console.core.adapters import (
    Adapter,
    ProbeResult,
    describe_exception,
    excerpt,
    timed_request,
    too_large,
)
from mlops_console.core.jsonhttp import Deadline, request_json
from mlops_console.core.readiness import LoadWatch

METADATA_EVERY = 10.0
"""Seconds between reads of `/schema.json` and of the served version."""
BENTOML_METRICS = MetricNames(
    requests="bentoml_service_request_total",
    latency="bentoml_service_request_duration_seconds",
    status_label="http_response_code",
    match={},
)
_VERSION = re.compile(rb'^bentoml_service_\w+\{[^}]*\bservice_version="([^"]*)"', re.MULTILINE)
UNVERSIONED = "not available"
"""What BentoML reports for a service served from source rather than from a built bento."""


def payload_from_schema(schema: Any, rows: list[Any] | None) -> dict[str, Any] | None:
    """A request body for a route whose input is a JSON object: each field's example or default; a
    lone required array field without one gets `rows` (the registry's serving example)."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return None
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return None
    required = schema.get("required") or []
    body: dict[str, Any] = {}
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        if isinstance(spec.get("examples"), list) and spec["examples"]:
            body[name] = spec["examples"][0]
        elif "example" in spec:
            body[name] = spec["example"]
        elif "default" in spec:
            body[name] = spec["default"]
        elif name in required and spec.get("type") == "array" and rows is not None:
            body[name] = rows
        elif name in required:
            return None
    return body


def _example_rows(example: dict[str, Any]) -> list[Any] | None:
    split = example.get("dataframe_split")
    candidates = [split.get("data") if isinstance(split, dict) else None]
    candidates += [example.get("instances"), example.get("inputs")]
    return next((rows for rows in candidates if isinstance(rows, list)), None)


class BentomlAdapter(Adapter):
    name = "bentoml"

    def __init__(self, endpoint: EndpointSettings) -> None:
        super().__init__(endpoint)
        self.watch = LoadWatch(endpoint.load_timeout)
        self.route: str | None = endpoint.path if "path" in endpoint.model_fields_set else None
        self._configured: bytes | None = None
        if endpoint.payload is not None:
            raw = endpoint.payload if isinstance(endpoint.payload, str) else json.dumps(endpoint.payload)
            self._configured = raw.encode()
        self._rows: list[Any] | None = None
        self._built: bytes | None = None
        self._returns_list = False
        self._served_version: str | None = None
        self._next_metadata = 0.0

    @property
    def wants_example(self) -> bool:
        return self.endpoint.payload is None and self.endpoint.model is not None

    def set_example(self, payload: dict[str, Any]) -> None:
        self._rows = _example_rows(payload)
        self._next_metadata = 0.0  # build the body again with these rows

    def stack_metrics(self) -> MetricNames:
        return BENTOML_METRICS.model_copy(update={"match": {"endpoint": self.route}} if self.route else {})

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        base, left = self.endpoint.url, Deadline(self.endpoint.timeout)
        route = "/livez"
        try:
            live = await timed_request(http, "GET", base + route, left())
            if live.redirect is not None or live.status != 200:
                error = f"{route} {live.redirect}" if live.redirect else f"HTTP {live.status} from {route}"
                return ProbeResult(ok=False, latency=live.latency, status=live.status, error=error)
            route = "/readyz"
            ready = await timed_request(http, "GET", base + route, left())
            if ready.status != 200:
                why = f"HTTP {ready.status} from /readyz: {excerpt(ready.body, 120)}"
                return self.watch.loading(ProbeResult(ok=False, status=ready.status), why)
            await self._metadata(http, left)
            payload = self._configured or self._built
            if payload is None or self.route is None:
                self.watch.ready()
                return ProbeResult(
                    ok=True, latency=ready.latency, status=200, served_version=self._served_version
                )
            route = self.route
            answer = await request_json(http, "POST", base, route, left(), payload)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and self.watch.hang_is_loading:
                # BentoML's socket is open before its service has loaded: requests wait, unanswered.
                return self.watch.loading(ProbeResult(ok=False), f"{route} timed out")
            if isinstance(exc, aiohttp.ClientConnectorError):
                self.watch.unreachable()
                self._next_metadata = 0.0
            return ProbeResult(ok=False, error=f"{route}: {describe_exception(exc)}")
        result = ProbeResult(ok=answer.status == 200, latency=answer.answer.latency, status=answer.status)
        if answer.answer.redirect is not None or answer.status != 200:
            result.error = answer.problem
            return result
        self.watch.ready()
        result.served_version = self._served_version
        if answer.answer.truncated:
            result.error = f"{too_large()} from {route}: prediction not checked"
            return result
        result.error = answer.problem or self._check(answer.data, payload)
        result.valid = result.error is None
        return result

    def _check(self, data: Any, payload: bytes) -> str | None:
        if not self._returns_list:
            return None
        if not isinstance(data, list):
            return f"{self.route} answered {type(data).__name__}, its schema says a list"
        try:
            sent = json.loads(payload)
        except ValueError:
            return None
        batches = [v for v in sent.values() if isinstance(v, list)] if isinstance(sent, dict) else []
        if len(batches) == 1 and len(data) != len(batches[0]):
            return f"expected {len(batches[0])} predictions, got {len(data)}"
        return None

    async def _metadata(self, http: aiohttp.ClientSession, left: Deadline) -> None:
        """The route's schema (request body, answer shape) and the served version, now and then."""
        now = time.monotonic()
        if now < self._next_metadata:
            return
        self._next_metadata = now + METADATA_EVERY
        base = self.endpoint.url
        try:
            schema = await request_json(http, "GET", base, "/schema.json", left())
            routes = schema.data.get("routes") if schema.ok and isinstance(schema.data, dict) else None
            if isinstance(routes, list):
                listed = [r for r in routes if isinstance(r, dict) and isinstance(r.get("route"), str)]
                if self.route is None and listed:
                    self.route = listed[0]["route"]
                spec = next((r for r in listed if r["route"] == self.route), None)
                if spec is not None:
                    output = spec.get("output")
                    self._returns_list = isinstance(output, dict) and output.get("type") == "array"
                    body = payload_from_schema(spec.get("input"), self._rows)
                    self._built = json.dumps(body).encode() if body is not None else None
            metrics = await timed_request(http, "GET", base + "/metrics", left())
            found = _VERSION.search(metrics.body) if metrics.status == 200 else None
            version = found.group(1).decode("utf-8", "replace") if found else None
            self._served_version = version if version and version != UNVERSIONED else None
        except Exception:  # schema and version are best effort; readiness was already measured
            pass
