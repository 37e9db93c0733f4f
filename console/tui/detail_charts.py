"""What the endpoint screen's charts draw besides the figures: the history views, the detector's
expected band as flat lines, and the error share over the history."""

from __future__ import annotations

from collections.abc import Sequence

from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Rollup

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
