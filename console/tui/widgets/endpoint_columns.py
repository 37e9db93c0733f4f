"""The overview's columns: their labels, widths, sort orders, and the cells whose looks need more than a
value (drift)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.tui.text import DASH

NARROW_WIDTHS = {"name": 16, "version": 5, "p95": 6, "rps": 6, "err": 5, "drift": 5}
"""Narrower cells below the overview's narrow width, so the drift column fits 80 columns."""
SPARK_WIDTH = 14
HEALTH_ORDER = {"down": 0, "degraded": 1, "loading": 2, "unknown": 3, "up": 4}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    narrow: bool
    sort: Callable[[EndpointSnapshot], Any]


def _num(value: float | None) -> float:
    return float("inf") if value is None else value


def _current(e: EndpointSnapshot, latency: float | None) -> float | None:
    """A latency percentile, or None while the endpoint is down: it then describes the time before."""
    return None if e.health == "down" else latency


def _drift_order(e: EndpointSnapshot) -> tuple[int, float]:
    """Drifting endpoints first, then by their drifting share; endpoints without a verdict last."""
    q = e.quality
    if q is None or q.drift_share is None:
        return (2, 0.0)
    return (0 if q.dataset_drift else 1, -q.drift_share)


def drift_cell(e: EndpointSnapshot, colors: dict[str, str]) -> Text:
    """`⚠3/4` when the dataset drifts, `1/4` when some features do, `ok`, `…` before a verdict."""
    q = e.quality
    if q is None:
        return Text(DASH, style="dim")
    judged = sum(1 for f in q.features if f.verdict in ("drift", "ok"))
    if q.drift_share is None or not judged:
        return Text("…", style="dim")
    if q.dataset_drift:
        return Text(f"⚠{len(q.drifted)}/{judged}", style=f"bold {colors['down']}")
    if q.drifted:
        return Text(f"{len(q.drifted)}/{judged}", style=colors["degraded"])
    return Text("ok")


COLUMNS: list[Column] = [
    Column("health", "health", 10, True, lambda e: HEALTH_ORDER.get(e.health, 9)),
    Column("name", "endpoint", 22, True, lambda e: e.name),  # 16 when narrow
    Column("model", "model@alias", 22, False, lambda e: (e.model or "", e.alias or "")),
    Column("want", "want", 5, False, lambda e: e.expected_version or ""),
    Column("serves", "serves", 7, False, lambda e: (not e.version_mismatch, e.served_version or "")),
    Column("version", "ver", 7, True, lambda e: (not e.version_mismatch, e.expected_version or "")),
    Column("p50", "p50", 7, False, lambda e: _num(_current(e, e.p50))),
    Column("p95", "p95", 7, True, lambda e: _num(_current(e, e.p95))),
    Column("p99", "p99", 7, False, lambda e: _num(_current(e, e.p99))),
    Column("rps", "req/s", 7, True, lambda e: -(e.rps or 0.0)),
    Column("err", "err%", 6, True, lambda e: -(e.error_ratio or 0.0)),
    Column("spark", "latency", SPARK_WIDTH, False, lambda e: _num(e.p50)),
    Column("drift", "drift", 7, True, lambda e: _drift_order(e)),
    Column("last_ok", "last ok", 7, True, lambda e: -(e.last_ok_at or 0.0)),
]
