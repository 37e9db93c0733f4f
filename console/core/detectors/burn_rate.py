"""SLO burn rate over several windows, as in the Google SRE workbook ("Alerting on SLOs").

With an objective of 99.9 % good events, the error budget is 0.1 %; a burn rate of 1 spends exactly the
budget over the SLO period. The page conditions are pairs of a long and a short window that must both
burn faster than a factor: 14.4x over 1 h and 5 min (2 % of a 30-day budget in an hour), and 6x over
6 h and 30 min (5 % in 6 hours). The long window says it matters, the short one that it is still
happening, so the alert resets soon after the burning stops.

Each poll brings a bad share (`value`: the error ratio for an availability SLO, the share of requests
slower than the target for a latency SLO) and the number of events behind it (`count`). Events are
summed in fixed buckets (`bucket` seconds), so state stays small however often the endpoint is polled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_console.core.detectors.base import UNKNOWN, Detector, Verdict, require_above

WORKBOOK_PAGES: tuple[tuple[float, float, float], ...] = ((3600.0, 300.0, 14.4), (21600.0, 1800.0, 6.0))
"""(long window s, short window s, burn-rate factor) pairs that page."""


@dataclass(frozen=True)
class BurnRateParams:
    objective: float = 0.999
    """Share of good events the SLO promises (availability 0.999; latency: share under the target)."""
    windows: tuple[tuple[float, float, float], ...] = WORKBOOK_PAGES
    bucket: float = 60.0
    assumed_requests: float = 100.0
    """Events behind a share given without a count."""
    persistence: tuple[int, int] = (1, 1)
    """The windows already smooth: one poll that burns too fast is enough."""
    period: float = 30 * 86400.0
    """The SLO period the error budget is counted over (the evidence's `budget_left`)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.objective < 1.0:
            raise ValueError(f"objective must be between 0 and 1 (e.g. 0.999), got {self.objective}")
        if not self.bucket > 0 or not self.period > 0:
            raise ValueError("bucket and period must be more than 0 seconds")
        require_above(self, 0, "assumed_requests")
        object.__setattr__(self, "windows", tuple(tuple(float(x) for x in w) for w in self.windows))


class BurnRateDetector(Detector):
    name = "burn_rate"
    Params = BurnRateParams
    params: BurnRateParams

    def __init__(self, params: BurnRateParams | None = None) -> None:
        super().__init__(params)
        self._buckets: dict[int, list[float]] = {}
        """Bucket number -> [bad events, all events]."""
        self._first_at: float | None = None
        self._hours: dict[int, list[float]] = {}
        """Hour number -> [bad events, all events] over the SLO period, for the budget left."""

    def update(self, at: float, value: float | None, count: float | None = None) -> Verdict:
        p = self.params
        if value is None or not math.isfinite(value):
            return UNKNOWN
        events = p.assumed_requests if count is None else count
        if self._first_at is None:
            self._first_at = at
        slot = int(at // p.bucket)
        bucket = self._buckets.setdefault(slot, [0.0, 0.0])
        bad_events = min(max(value, 0.0), 1.0) * events
        bucket[0] += bad_events
        bucket[1] += events
        hour = self._hours.setdefault(int(at // 3600), [0.0, 0.0])
        hour[0] += bad_events
        hour[1] += events
        longest = max(w[0] for w in p.windows)
        oldest = int((at - longest) // p.bucket)
        for old in [s for s in self._buckets if s <= oldest]:
            del self._buckets[old]
        oldest_hour = int((at - p.period) // 3600)
        for old in [h for h in self._hours if h <= oldest_hour]:
            del self._hours[old]
        budget = 1.0 - p.objective
        burns: dict[str, float | None] = {}
        firing: list[float] = []
        judged = False
        for long_w, short_w, factor in p.windows:
            if at - self._first_at < short_w - p.bucket:
                continue  # not even the short window is covered yet
            long_burn = self._burn(at, long_w, budget)
            short_burn = self._burn(at, short_w, budget)
            burns[_label(long_w)], burns[_label(short_w)] = long_burn, short_burn
            if long_burn is None or short_burn is None:
                continue
            judged = True
            if long_burn >= factor and short_burn >= factor:
                firing.append(min(long_burn, short_burn) / factor)
        if not judged:
            return Verdict(None, evidence={"value": value, "burn_rates": burns})
        lowest = min(w[2] for w in p.windows)
        evidence = {
            "value": value,
            "objective": p.objective,
            "burn_rates": burns,
            "budget_left": self.budget_left(at),
        }
        score = max(firing) if firing else max((b or 0.0) for b in burns.values()) / lowest
        expected = (0.0, min(1.0, budget * lowest))
        return Verdict(bool(firing), score, expected, "burn" if firing else None, evidence)

    def _burn(self, at: float, window: float, budget: float) -> float | None:
        first = int((at - window) // self.params.bucket) + 1
        bad = total = 0.0
        for slot, (b, n) in self._buckets.items():
            if slot >= first:
                bad += b
                total += n
        if total <= 0:
            return None
        return bad / total / budget

    def budget_left(self, at: float) -> float | None:
        """The share of the period's error budget not spent yet (negative: overspent), or None before
        any event. The budget is the objective's share of the events the whole period will bring at
        the rate seen so far, so a young detector does not call a bad first hour the whole budget."""
        bad = sum(b for b, _ in self._hours.values())
        total = sum(n for _, n in self._hours.values())
        if total <= 0 or self._first_at is None:
            return None
        p = self.params
        covered = min(p.period, max(p.bucket, at - self._first_at + p.bucket))
        return 1.0 - bad * covered / ((1.0 - p.objective) * total * p.period)

    def _state(self) -> dict[str, Any]:
        return {
            "first_at": self._first_at,
            "buckets": [[s, b, n] for s, (b, n) in self._buckets.items()],
            "hours": [[h, b, n] for h, (b, n) in self._hours.items()],
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        self._first_at = state.get("first_at")
        self._buckets = {int(s): [float(b), float(n)] for s, b, n in state.get("buckets", [])}
        self._hours = {int(h): [float(b), float(n)] for h, b, n in state.get("hours", [])}


def _label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    return f"{seconds / 60:g}m" if seconds >= 60 else f"{seconds:g}s"
