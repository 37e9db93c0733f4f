"""Backtest: the stored per-minute history of an endpoint turned into the series `replay` runs.

Each rollup row is one judged value per signal, exactly what a rule judges at its default cadence (one
fresh minute): latency p95 (with the successful probes behind it), throughput (with the requests) and
the error ratio of real traffic (only where the endpoint's metrics were read, as the engine judges it).
Minutes with no row are missed polls; the detectors see them as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from mlops_console.core.replay import Point, Series
from mlops_console.core.store import Rollup

MINUTE = 60.0


def history_series(rollups: Sequence[Rollup], signal: str) -> Series:
    """`signal`'s values, one point per stored minute (labelled with its UTC start), oldest first."""
    points = []
    for row in rollups:
        at = row.minute * MINUTE
        value: float | None
        count: float | None
        if signal == "latency":
            value, count = row.p95, (float(row.samples) if row.samples is not None else None)
        elif signal == "throughput":
            value, count = row.rps, row.requests if row.rps is not None else None
        else:
            # Without metrics (no rate) the ratio is of our probes: the engine does not judge it.
            measured = row.rps is not None and row.error_ratio is not None
            value, count = (row.error_ratio, row.requests) if measured else (None, None)
        label = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        points.append(Point(at, value, count, label))
    return Series(tuple(points), MINUTE)
