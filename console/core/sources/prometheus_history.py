"""One endpoint's history read from Prometheus (`/api/v1/query_range`), for the detail charts.

The same queries as the instant rounds, narrowed to the endpoint with a matcher on `[prometheus]
group_by`, evaluated once per step; the answer has the shape of the store's per-minute rollups, so a
chart draws either. Blocking (its own event loop): call it from a worker thread, never the UI's.
"""

from __future__ import annotations

import asyncio

from mlops_console.config import EndpointSettings, PrometheusQueries, Settings
from mlops_console.core.adapters import create_adapter, new_http_session
from mlops_console.core.promapi import PromError
from mlops_console.core.promql import _matchers, expand
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.sources.prometheus import client_for
from mlops_console.core.store import Rollup, Store

__all__ = ["PromError", "chart_history", "read_history"]


def chart_history(
    settings: Settings,
    store: Store,
    name: str,
    now: float,
    span: float,
    step: int,
    shown: EndpointSnapshot | None = None,
) -> tuple[tuple[Rollup, ...], str]:
    """An endpoint's last `span` seconds at `step` minutes a point, and where they come from:
    Prometheus' ranges for an endpoint whose figures come from there (configured, or discovered:
    `shown`, its snapshot, says which and by what label value), else the store's rollups (also when
    Prometheus cannot answer, which the note then says)."""
    endpoint = _prometheus_endpoint(settings, name, shown)
    if endpoint is not None:
        try:
            return tuple(read_history(settings, endpoint, now - span, now, step * 60.0)), "from Prometheus"
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
    settings: Settings, endpoint: EndpointSettings, since: float, until: float, step: float
) -> list[Rollup]:
    """Rates, error ratio and latency quantiles of `endpoint` from `since` to `until`, one `Rollup`
    per `step` seconds Prometheus has a value for (oldest first). PromError when Prometheus gives no
    usable answer (unreachable, slow, `bad_data`, partial)."""
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
            answers = await asyncio.gather(
                *(client.query_range(http, text, since, until, step) for text in texts.values()),
                return_exceptions=True,
            )
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
    rollups = []
    for at in sorted(set().union(*(points.keys() for points in signals.values()))):
        rps = signals["rps"].get(at)
        errors = signals["errors"].get(at)
        rollups.append(
            Rollup(
                endpoint=endpoint.name,
                minute=int(at // 60),
                probes=0,
                failures=0,
                p50=signals["p50"].get(at),
                p95=signals["p95"].get(at),
                p99=signals["p99"].get(at),
                rps=rps,
                error_ratio=min(1.0, (errors or 0.0) / rps) if rps else None,
            )
        )
    return rollups
