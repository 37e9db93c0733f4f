"""Adapter for the `mlflow models serve` scoring protocol (and `mlops-console serve`, which adds routes).

Liveness is `GET /ping`. With a synthetic request (from config, or the model version's
`serving_input_example.json`), each probe is a real `POST /invocations`, so latency is the inference
path and the answer is checked for shape. `GET /model-info` (served by `mlops-console serve`) tells
which version is loaded; a 404 there means this server cannot tell, and we stop asking for a while.
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from mlops_console.config import EndpointSettings
from mlops_console.core.adapters import (
    Adapter,
    ProbeResult,
    describe_exception,
    excerpt,
    timed_request,
    too_large,
)

MODEL_INFO_EVERY = 10.0
"""Seconds between `/model-info` checks: the served version changes only on redeploy."""
MODEL_INFO_BACKOFF = 300.0


def expected_rows(payload: dict[str, Any]) -> int | None:
    """How many predictions a scoring request should produce, where the format says."""
    if "dataframe_split" in payload:
        data = payload["dataframe_split"].get("data")
        return len(data) if isinstance(data, list) else None
    for key in ("dataframe_records", "instances"):
        if isinstance(payload.get(key), list):
            return len(payload[key])
    inputs = payload.get("inputs")
    if isinstance(inputs, list):
        return len(inputs)
    if isinstance(inputs, dict) and inputs:
        first = next(iter(inputs.values()))
        return len(first) if isinstance(first, list) else None
    return None


def check_predictions(body: bytes, rows: int | None) -> str | None:
    """None if the body is a valid scoring answer, else what is wrong with it."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"response is not JSON: {excerpt(body, 120)}"
    except RecursionError:  # deeply nested arrays: a JSON bomb, not an endpoint that is down
        return "response is JSON nested too deeply to check"
    predictions = answer.get("predictions") if isinstance(answer, dict) else answer
    if not isinstance(predictions, list):
        return "response has no `predictions` list"
    if rows is not None and len(predictions) != rows:
        return f"expected {rows} predictions, got {len(predictions)}"
    return None


class MlflowAdapter(Adapter):
    name = "mlflow"

    def __init__(self, endpoint: EndpointSettings) -> None:
        super().__init__(endpoint)
        self.payload: bytes | None = None
        self.rows: int | None = None
        if endpoint.payload is not None:
            raw = endpoint.payload if isinstance(endpoint.payload, str) else json.dumps(endpoint.payload)
            self.set_example(json.loads(raw))
        self._served_version: str | None = None
        self._next_model_info = 0.0

    @property
    def wants_example(self) -> bool:
        return self.endpoint.payload is None and self.endpoint.model is not None

    def set_example(self, payload: dict[str, Any]) -> None:
        self.payload = json.dumps(payload).encode()
        self.rows = expected_rows(payload)

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        base, timeout = self.endpoint.url, self.endpoint.timeout
        try:
            if self.payload is None:
                route = "/ping"
                answer = await timed_request(http, "GET", base + route, timeout)
            else:
                route = "/invocations"
                answer = await timed_request(
                    http,
                    "POST",
                    base + route,
                    timeout,
                    data=self.payload,
                    headers={"Content-Type": "application/json"},
                )
        except Exception as exc:
            return ProbeResult(ok=False, error=describe_exception(exc))
        result = ProbeResult(ok=answer.status == 200, latency=answer.latency, status=answer.status)
        if answer.redirect is not None:
            result.error = f"{route} {answer.redirect}"
        elif answer.status != 200:
            result.error = f"HTTP {answer.status} from {route}: {excerpt(answer.body)}"
        elif route == "/invocations":
            if answer.truncated:
                # It answered, so it is up; the shape is unknown, so neither `down` nor
                # `invalid_prediction` may page for it. The reason stays visible as the last error.
                result.error = f"{too_large()} from /invocations: prediction not checked"
            else:
                problem = check_predictions(answer.body, self.rows)
                result.valid = problem is None
                result.error = problem
        if result.ok:
            result.served_version = await self._model_version(http)
        return result

    async def _model_version(self, http: aiohttp.ClientSession) -> str | None:
        now = time.monotonic()
        if now < self._next_model_info:
            return self._served_version
        self._next_model_info = now + MODEL_INFO_EVERY
        try:
            answer = await timed_request(
                http, "GET", f"{self.endpoint.url}/model-info", self.endpoint.timeout
            )
            if answer.status == 404:
                self._next_model_info = now + MODEL_INFO_BACKOFF
                self._served_version = None
            elif answer.status == 200 and not answer.truncated:
                version = json.loads(answer.body).get("model_version")
                self._served_version = str(version) if version is not None else None
        except Exception:  # version reporting is best effort; liveness was already measured
            pass
        return self._served_version
