"""How every face writes durations, latencies, rates and ratios: the TUI, the CLI, logs and alert texts.

One rule per kind of figure, so a value reads the same in an alert, a log line, `status` and the
console (`611ms`, `1840ms`, `12.3s`). Prose passes `sep=" "` (`611 ms`); tables use the compact form.
Pure functions: the clock is passed in where one is needed.
"""

from __future__ import annotations

from mlops_console.core.limits import displayable_epoch

DASH = "\u2013"
"""Shown for a figure nobody measured (never zero)."""


def latency(seconds: float | None, *, sep: str = "", none: str = DASH) -> str:
    """`4.2ms`, `611ms`, `1840ms`, `12.3s`: milliseconds up to ten seconds, one decimal below ten."""
    if seconds is None:
        return none
    ms = seconds * 1000
    if ms < 10:
        return f"{ms:.1f}{sep}ms"
    if ms < 10_000:
        return f"{ms:.0f}{sep}ms"
    return f"{seconds:.1f}{sep}s"


def rate(per_second: float | None, *, unit: str = "/s", none: str = DASH) -> str:
    """`0.4/s`, `41.7/s`, `123/s`, `1.2k/s`."""
    if per_second is None:
        return none
    if per_second >= 1000:
        return f"{per_second / 1000:.1f}k{unit}"
    if per_second >= 100:
        return f"{per_second:.0f}{unit}"
    return f"{per_second:.1f}{unit}"


def ratio(value: float | None, *, none: str = DASH) -> str:
    """A share as a percentage: `0%`, `2.1%`, `12%`."""
    if value is None:
        return none
    pct = value * 100
    if pct == 0:
        return "0%"
    if pct < 10:
        return f"{pct:.1f}%"
    return f"{pct:.0f}%"


def duration(seconds: float) -> str:
    """A span of time: `45s`, `15m`, `1.5h`, `2d` (silences, rule `for` windows, waits)."""
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 86400:g}d"


def age(then: float | None, now: float) -> str:
    """`12s`, `4m`, `3h`, `2d` since `then`; `never` when it never happened."""
    if then is None:
        return "never"
    seconds = max(0.0, displayable_epoch(now) - displayable_epoch(then))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h"
    return f"{seconds // 86400:.0f}d"
