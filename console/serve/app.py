"""The aiohttp application: MLflow's scoring routes plus /metrics, /model-info and /chaos."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from mlops_console.core.quality.records import PROBE_HEADER
from mlops_console.serve import mlflow_protocol
from mlops_console.serve.chaos import ChaosSettings
from mlops_console.serve.inference_log import InferenceLog, Scored, count_rows
from mlops_console.serve.limits import DEFAULT_MAX_BODY
from mlops_console.serve.metrics import CONTENT_TYPE_LATEST, ServeMetrics
from mlops_console.serve.model_loader import ModelIdentity

MODEL_KEY = web.AppKey("model", object)
IDENTITY_KEY = web.AppKey("identity", ModelIdentity)
METRICS_KEY = web.AppKey("metrics", ServeMetrics)
CHAOS_KEY = web.AppKey("chaos", ChaosSettings)
EXECUTOR_KEY = web.AppKey("executor", ThreadPoolExecutor)
MAX_BODY_KEY = web.AppKey("max_body", int)
LOG_KEY = web.AppKey("inference_log", InferenceLog)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS_KEY]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        metrics.observe_request(request.path, request.method, status, time.perf_counter() - started)


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse bodies over the limit with MLflow's JSON error shape, before reading them if the
    client declared their length (aiohttp itself answers a plain-text 413 only after reading)."""
    limit = request.app[MAX_BODY_KEY]
    if request.content_length is not None and request.content_length > limit:
        return _too_large(limit)
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _too_large(limit)


def _too_large(limit: int) -> web.Response:
    message = f"request body too large: over {limit} bytes (the server's --max-body)"
    return _error(413, "RESOURCE_LIMIT_EXCEEDED", message)


def _json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(payload), status=status, content_type="application/json")


def _error(status: int, error_code: str, message: str) -> web.Response:
    return _json_response({"error_code": error_code, "message": message}, status)


async def ping(request: web.Request) -> web.Response:
    return web.Response(text="\n", content_type="application/json")


async def version(request: web.Request) -> web.Response:
    return web.Response(text=mlflow_protocol.MLFLOW_VERSION, content_type="application/json")


async def model_info(request: web.Request) -> web.Response:
    return _json_response(request.app[IDENTITY_KEY].as_json())


async def metrics(request: web.Request) -> web.Response:
    # CONTENT_TYPE_LATEST carries a charset parameter, which aiohttp wants passed separately.
    return web.Response(
        body=request.app[METRICS_KEY].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def invocations(request: web.Request) -> web.Response:
    app = request.app
    chaos = app.get(CHAOS_KEY)
    if chaos is not None:
        if chaos.delay_ms > 0:
            await asyncio.sleep(chaos.delay_ms / 1000)
        if chaos.should_fail():
            return _error(500, "INTERNAL_ERROR", "chaos: injected failure")
    body = await request.read()
    loop = asyncio.get_running_loop()
    # The console's own probes are scored like any request but not logged: their fixed example rows
    # would dilute the window of real traffic whose drift the log is read for.
    log = None if PROBE_HEADER in request.headers else app.get(LOG_KEY)
    score = functools.partial(
        mlflow_protocol.score,
        app[MODEL_KEY],
        body,
        request.headers.get("Content-Type"),
        capture=log is not None,
    )
    result = await loop.run_in_executor(app[EXECUTOR_KEY], score)
    if result.status == 200:
        _count_predictions(app[METRICS_KEY], result.body)
        if log is not None and result.scored_at is not None:
            identity = app[IDENTITY_KEY]
            log.submit(
                Scored(
                    at=result.scored_at,
                    model=identity.model_name,
                    version=identity.model_version,
                    data=result.inputs,
                    predictions=result.predictions,
                    request_id=request.headers.get("X-Request-Id"),
                    rows=count_rows(result.inputs),
                )
            )
    return web.Response(text=result.body, status=result.status, headers={"Content-Type": result.content_type})


def _count_predictions(metrics_: ServeMetrics, body: str) -> None:
    try:
        decoded = json.loads(body)
    except ValueError:
        return
    if isinstance(decoded, dict):
        metrics_.observe_predictions(decoded.get("predictions"))


async def get_chaos(request: web.Request) -> web.Response:
    return _json_response(request.app[CHAOS_KEY].as_json())


async def post_chaos(request: web.Request) -> web.Response:
    chaos = request.app[CHAOS_KEY]
    try:
        chaos.update(await request.json())
    except ValueError as e:  # json.JSONDecodeError is a ValueError too
        return _error(400, "BAD_REQUEST", f"invalid chaos settings: {e}")
    except RecursionError:
        return _error(400, "BAD_REQUEST", "invalid chaos settings: JSON nested too deeply")
    return _json_response(chaos.as_json())


def build_app(
    model: Any,
    identity: ModelIdentity,
    *,
    chaos: bool = False,
    workers: int = 4,
    max_body: int = DEFAULT_MAX_BODY,
    inference_log: InferenceLog | None = None,
) -> web.Application:
    """The scoring app. An `inference_log` gets every scored request and is closed (its queue written
    out) when the app shuts down."""
    # aiohttp refuses a body that reaches client_max_size; one more byte lets exactly `max_body` in.
    app = web.Application(
        middlewares=[metrics_middleware, body_limit_middleware], client_max_size=max_body + 1
    )
    app[MAX_BODY_KEY] = max_body
    app[MODEL_KEY] = model
    app[IDENTITY_KEY] = identity
    app[METRICS_KEY] = ServeMetrics()
    app[EXECUTOR_KEY] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")
    app.router.add_get("/ping", ping)
    app.router.add_get("/health", ping)
    app.router.add_get("/version", version)
    app.router.add_post("/invocations", invocations)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/model-info", model_info)
    if chaos:
        app[CHAOS_KEY] = ChaosSettings()
        app.router.add_get("/chaos", get_chaos)
        app.router.add_post("/chaos", post_chaos)

    if inference_log is not None:
        inference_log.on_rows = app[METRICS_KEY].observe_logged
        app[LOG_KEY] = inference_log

    async def shutdown_executor(app_: web.Application) -> None:
        app_[EXECUTOR_KEY].shutdown(wait=False, cancel_futures=True)
        if LOG_KEY in app_:
            await asyncio.get_running_loop().run_in_executor(None, app_[LOG_KEY].close)

    app.on_cleanup.append(shutdown_executor)
    return app
