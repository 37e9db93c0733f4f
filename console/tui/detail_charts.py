"""What the endpoint screen's charts draw besides the figures: the history views, the detector's
expected band as flat lines, and the error share over the history."""

from __future__ import annotations

from collections.abc import Sequence

from mlops_console.config import Settings
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import AuditEntry, Rollup, Store

VIEWS: tuple[tuple[str, float, int, float, str], ...] = (
    ("hour", 3600.0, 1, 60.0, "minutes ago"),
    ("day", 86400.0, 10, 3600.0, "hours ago"),
    ("week", 7 * 86400.0, 60, 3600.0, "hours ago"),
)
"""(name, seconds shown, minutes per point, seconds per x unit, x label) of the history views."""

Line = tuple[list[float], list[float | None]]


def expected_bands(e: EndpointSnapshot, signal: str, since: float, scale: float) -> dict[str, Line]:
    """The detector's expected band for `signal` as flat lines from `since` to now (`scale`: to the
    chart's unit)."""
    out: dict[str, Line] = {}
    for watched, low, high in e.bands:
        if watched != signal:
            continue
        if high is not None:
            out[f"expected ≤ {high * scale:.4g}"] = ([since, 0.0], [high * scale] * 2)
        if low is not None and low > 0:
            out[f"expected ≥ {low * scale:.4g}"] = ([since, 0.0], [low * scale] * 2)
    return out


def error_share(
    rollups: Sequence[Rollup], e: EndpointSnapshot | None, now: float, since: float, unit: float = 60.0
) -> Line:
    """Error share (%) from the history back to `since` units (of `unit` seconds) ago, then the
    current one."""
    points = [
        (round((r.minute * 60 - now) / unit, 2), r.error_ratio * 100)
        for r in rollups
        if r.error_ratio is not None and (r.minute * 60 - now) / unit >= since
    ]
    if e is not None and e.error_ratio is not None:
        points.append((0.0, e.error_ratio * 100))
    return [p[0] for p in points], [p[1] for p in points]


def prometheus_latency(
    e: EndpointSnapshot, rollups: Sequence[Rollup], now: float, history_from: str
) -> tuple[dict[str, Line], float, str]:
    """The latency chart of an endpoint whose quantiles come from Prometheus: the minutes read so far
    (from Prometheus, or the store's when it cannot answer: the title says which), then the latest
    round's figures. Returns the lines, where the x axis starts, and the title."""
    x = [round((r.minute * 60 - now) / 60, 2) for r in rollups] + [0.0]
    # Short: plotext drops a title wider than the chart.
    latest = "latest round (stale)" if e.stale else "latest round"
    stored = "stored " if history_from.endswith("stored history shown") else ""
    minutes = f"{len(rollups)} {stored}min + {latest}" if rollups else latest
    return quantile_lines(x, [*rollups, e]), min(x[0], -1.0), f"Prometheus: {minutes}"


def quantile_lines(x: list[float], rows: Sequence[Rollup | EndpointSnapshot]) -> dict[str, Line]:
    """p50, p95 and p99 of each row (seconds) as lines in milliseconds; a missing figure is a gap."""

    def ms(key: str) -> Line:
        values = [getattr(r, key) for r in rows]
        return x, [None if v is None else v * 1000 for v in values]

    return {p: ms(p) for p in ("p50", "p95", "p99")}


def history_source(history_from: str) -> str:
    """The charts' title says where their history comes from when it is not simply the store (the
    full reason Prometheus could not answer is the status bar's)."""
    if not history_from:
        return ""
    if history_from == "from Prometheus":
        return ", from Prometheus"
    return ", stored (Prometheus failed)"


def endpoint_audit(
    settings: Settings, store: Store, name: str, shown: EndpointSnapshot | None
) -> list[AuditEntry]:
    """Promotes and rollbacks of the alias the endpoint serves, and its redeploys (newest 100)."""
    try:
        configured = settings.endpoint(name)
        model, alias = configured.model, configured.alias
    except KeyError:
        model, alias = (shown.model, shown.alias) if shown else (None, None)
    if not model:
        return []
    alias = alias or settings.alias_for(model)
    return [
        r
        for r in store.list_audit(model=model, limit=200)
        if (r.action in ("promote", "rollback") and r.alias in (alias, None))
        or (r.action == "deploy" and r.endpoint == name)
    ][:100]
