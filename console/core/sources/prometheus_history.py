"""History read from Prometheus (`/api/v1/query_range`) in the shape of the store's per-minute rollups.

For the detail charts, one endpoint's: the same queries as the instant rounds, narrowed to the endpoint
with a matcher on `[prometheus] group_by`, evaluated once per step (`read_history`: blocking, its own
event loop; call it from a worker thread, never the UI's). For the store after a restart, a fleet's
minutes, one slice of time at a time (`fleet_minutes`: fetched on the engine's loop, parsed on a
worker thread).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from mlops_console.config import EndpointSettings, PrometheusQueries, Settings
from mlops_console.core.adapters import create_adapter, new_http_session
from mlops_console.core.promapi import PromClient, PromError, client_for
from mlops_console.core.promql import SignalQueries, _matchers, expand
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Rollup, Store

__all__ = ["FILL_SLICE", "FILL_SPAN", "PromError", "chart_history", "fleet_minutes", "read_history"]

SUPERSEDED_POLL = 0.05
"""Seconds between two looks at whether a chart's read is still wanted."""
FILL_SPAN = 3600.0
"""How far back a watcher fills the store's missing minutes of a Prometheus-sourced endpoint (the hour
view; the day and week views read Prometheus itself)."""
FILL_SLICE = 300.0
"""Seconds of minutes per range query when filling: 5 points a series, so one answer at 10,000
endpoints parses within the memory of a throughput backfill slice (10 points a series)."""


def chart_history(
    settings: Settings,
    store: Store,
    name: str,
    now: float,
    span: float,
    step: int,
    shown: EndpointSnapshot | None = None,
    superseded: threading.Event | None = None,
) -> tuple[tuple[Rollup, ...], str]:
    """An endpoint's last `span` seconds at `step` minutes a point, and where they come from:
    Prometheus' ranges for an endpoint whose figures come from there (configured, or discovered:
    `shown`, its snapshot, says which and by what label value), else the store's rollups (also when
    Prometheus cannot answer, which the note then says). Once `superseded` is set (a newer chart
    asked for), Prometheus' queries are dropped and the store's rollups come back at once."""
    endpoint = _prometheus_endpoint(settings, name, shown)
    if endpoint is not None:
        try:
            rows = read_history(settings, endpoint, now - span, now, step * 60.0, superseded)
            return tuple(rows), "from Prometheus"
        except PromError as exc:
            return tuple(store.history(name, now - span, step)), f"Prometheus: {exc}; stored history shown"
    return tuple(store.history(name, now - span, step)), ""


def _prometheus_endpoint(
    settings: Settings, name: str, shown: EndpointSnapshot | None
) -> EndpointSettings | None:
    """The settings to read `name`'s ranges with, when its figures come from Prometheus."""
    if settings.prometheus is None:
        return None
    try:
        configured = settings.endpoint(name)
    except KeyError:
        pass
    else:
        return configured if settings.source_of(configured) == "prometheus" else None
    if shown is None or not shown.discovered or not shown.prometheus_id:
        return None
    try:
        return EndpointSettings(
            name=name,
            url=shown.url,
            adapter=shown.adapter,
            source="prometheus",
            prometheus_id=shown.prometheus_id,
        )
    except ValueError:  # a snapshot from another version of the console
        return None


def read_history(
    settings: Settings,
    endpoint: EndpointSettings,
    since: float,
    until: float,
    step: float,
    superseded: threading.Event | None = None,
) -> list[Rollup]:
    """Rates, error ratio and latency quantiles of `endpoint` from `since` to `until`, one `Rollup`
    per `step` seconds Prometheus has a value for (oldest first). PromError when Prometheus gives no
    usable answer (unreachable, slow, `bad_data`, partial), or when `superseded` is set before it
    has answered (its queries are dropped then, so a screen switching views against a slow Prometheus
    never has more than one read waiting)."""
    prom = settings.prometheus
    if prom is None:
        raise PromError("no [prometheus] configured")
    group, key = prom.group_by, endpoint.group_value
    (matcher,) = _matchers({group: key})
    narrowed = prom.model_copy(
        update={"selector": f"{prom.selector},{matcher}" if prom.selector else matcher}
    )
    names = create_adapter(endpoint).metric_names()
    queries = expand(prom.queries.get(endpoint.adapter) or PrometheusQueries(), names, narrowed)
    texts = {"rps": queries.requests, "errors": queries.errors, **dict(queries.latency)}
    client = client_for(settings)

    async def read() -> dict[str, dict[float, float]]:
        async with new_http_session() as http:
            gathered = asyncio.gather(
                *(client.query_range(http, text, since, until, step) for text in texts.values()),
                return_exceptions=True,
            )
            while not gathered.done():
                if superseded is not None and superseded.is_set():
                    gathered.cancel()
                    # Nobody reads its outcome now: asyncio would log it as an error never retrieved.
                    gathered.add_done_callback(_forget)
                    raise PromError("superseded by a newer request")
                await asyncio.wait({gathered}, timeout=SUPERSEDED_POLL)
            answers = gathered.result()
        out: dict[str, dict[float, float]] = {}
        for signal, answer in zip(texts, answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer
            points: dict[float, float] = {}
            for labels, series in answer:
                if labels.get(group, key) == key:  # an override without `{selector}` answers for all
                    points.update(series)
            out[signal] = points
        return out

    signals = asyncio.run(read())
    return [
        _minute(endpoint.name, at, signals, at)
        for at in sorted(set().union(*(p.keys() for p in signals.values())))
    ]


def _forget(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # marks it read


async def fleet_minutes(
    client: PromClient,
    http: aiohttp.ClientSession,
    queries: SignalQueries,
    group: str,
    wanted: Mapping[str, Sequence[tuple[str, int]]],
    since: float,
    until: float,
) -> list[Rollup]:
    """The per-minute figures from `since` to `until` of the endpoints `wanted` (group label value to
    the `(name, first minute wanted)` of each endpoint with it), one range query per signal for all
    of them, asked one after another: each answer is folded in and dropped before the next arrives,
    so at most one is parsed at a time. The parsing, folding and the rollups are a worker thread's
    (at 10,000 endpoints they would hold the engine's loop for seconds); `wanted` must not change
    until this returns. PromError when Prometheus gives no usable answer."""
    signals: dict[str, dict[tuple[str, int], float]] = {}
    texts = {"rps": queries.requests, "errors": queries.errors, **dict(queries.latency)}
    fold = functools.partial(_fold_minutes, wanted, group)
    for signal, text in texts.items():
        signals[signal] = await client.query_range_folded(http, text, since, until, 60.0, fold)
    return await asyncio.to_thread(_rollups, signals)


def _fold_minutes(
    wanted: Mapping[str, Sequence[tuple[str, int]]],
    group: str,
    answer: list[tuple[Mapping[str, str], list[tuple[float, float]]]],
) -> dict[tuple[str, int], float]:
    """One signal's answer as `{(endpoint, minute): value}`, for the minutes wanted."""
    values: dict[tuple[str, int], float] = {}
    for labels, points in answer:
        for name, first in wanted.get(labels.get(group, ""), ()):
            for at, value in points:
                minute = int(at // 60)
                if minute >= first:
                    values[(name, minute)] = value
    return values


def _rollups(signals: Mapping[str, Mapping[tuple[str, int], float]]) -> list[Rollup]:
    keys = sorted(set().union(*(v.keys() for v in signals.values())))
    return [_minute(name, (name, minute), signals, minute * 60.0) for name, minute in keys]


def _minute(name: str, key: object, signals: Mapping[str, Mapping[Any, float]], at: float) -> Rollup:
    rps = signals["rps"].get(key)
    errors = signals["errors"].get(key)
    return Rollup(
        endpoint=name,
        minute=int(at // 60),
        probes=0,
        failures=0,
        p50=signals["p50"].get(key),
        p95=signals["p95"].get(key),
        p99=signals["p99"].get(key),
        rps=rps,
        error_ratio=min(1.0, (errors or 0.0) / rps) if rps else None,
    )
