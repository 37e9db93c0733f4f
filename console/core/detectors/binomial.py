"""Error ratio: a binomial test of this poll's errors against the endpoint's own baseline proportion.

The median and MAD of small error counts are zero most of the time, so a robust z says nothing about
them. Instead: with `n` requests and a baseline error proportion `p0` (errors over requests of the
recent accepted polls, with a small prior so a clean history is not "exactly zero"), how likely are
`k` or more errors if the true proportion were `p0` lifted by `rel_floor`? Below `alpha` it is
anomalous, but never with fewer than `min_errors` errors: two failed requests out of three at night
are not an incident. The same test runs over the sum of the last `span` polls, which sees a rate
that is too low to stand out in any single poll. Anomalous polls are not learnt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_console.core.detectors.base import UNKNOWN, Detector, Verdict, require_above, require_at_least
from mlops_console.core.detectors.binomial_distribution import MAX_TRIALS, binomial_tail, critical_errors
from mlops_console.core.rings import PointRing

__all__ = ["BinomialDetector", "BinomialParams", "binomial_tail", "critical_errors"]


@dataclass(frozen=True)
class BinomialParams:
    alpha: float = 1e-3
    """Tail probability below which the errors of a poll are anomalous."""
    min_errors: float = 3
    rel_floor: float = 0.5
    """The proportion tested against is the baseline lifted by this share..."""
    abs_floor: float = 0.002
    """...and by at least this much (0.2 percentage points)."""
    window: int = 60
    """Accepted polls behind the baseline proportion."""
    warmup: int = 30
    min_requests: float = 1
    prior_errors: float = 1.0
    prior_requests: float = 1000.0
    """A prior of 1 error in 1000 requests: a spotless history still leaves room for bad luck."""
    assumed_requests: float = 100.0
    """Requests behind a ratio given without a count (a CSV of ratios only)."""
    span: int = 5
    """Polls summed for a second test, so a rate too low to stand out in one poll's few requests
    (1 % of 30 requests a minute) still does over several."""
    shift_after: int = 10
    persistence: tuple[int, int] = (2, 3)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1 (e.g. 0.001), got {self.alpha}")
        require_at_least(self, 0, "warmup", "min_errors", "rel_floor", "abs_floor", "min_requests")
        require_at_least(self, 0, "prior_errors")
        require_above(self, 0, "prior_requests", "assumed_requests")
        require_at_least(self, 1, "window", "span", "shift_after")


class BinomialDetector(Detector):
    name = "binomial"
    Params = BinomialParams
    params: BinomialParams

    def __init__(self, params: BinomialParams | None = None) -> None:
        super().__init__(params)
        self._window: PointRing[float] = PointRing(self.params.window)
        self._recent: PointRing[float] = PointRing(self.params.span)
        """The last `span` judged polls, anomalous or not."""
        self._errors = 0.0
        self._requests = 0.0
        """Sums over the window, kept as polls come and go."""
        self._accepted = 0
        self._run = 0

    def baseline(self) -> float:
        p = self.params
        return (self._errors + p.prior_errors) / (self._requests + p.prior_requests)

    def update(self, at: float, value: float | None, count: float | None = None) -> Verdict:
        p = self.params
        if value is None or not math.isfinite(value):
            return UNKNOWN
        requests = p.assumed_requests if count is None else count
        if requests < p.min_requests or not 0 < requests < math.inf:  # NaN too: no count, no test
            return Verdict(None, evidence={"value": value, "requests": requests})
        # Past MAX_TRIALS, the same share of errors in that many (a counter misread or hostile): its
        # tail would take seconds, and summed into the baseline, overflow it.
        requests = min(requests, MAX_TRIALS)
        errors = round(min(max(value, 0.0), 1.0) * requests)
        if self._accepted < p.warmup:
            self._learn(errors, requests)
            return Verdict(None, evidence={"value": value, "warming_up": self._accepted, "of": p.warmup})
        base = self.baseline()
        tested = min(max(base * (1 + p.rel_floor), base + p.abs_floor), 0.999)
        critical = max(critical_errors(requests, tested, p.alpha), math.ceil(p.min_errors))
        tail = binomial_tail(errors, requests, tested)
        self._recent.append((errors, requests))
        # Without its worst poll: one bad minute is the single-poll test's business, not the span's.
        worst = max(self._recent, key=lambda r: r[0])
        span_errors = sum(e for e, _ in self._recent) - worst[0]
        span_requests = sum(n for _, n in self._recent) - worst[1]
        span_tail = binomial_tail(span_errors, span_requests, tested)
        over_span = span_errors >= p.min_errors and span_tail < p.alpha
        score = -math.log10(max(min(tail, span_tail), 1e-300))
        evidence = {
            "value": value,
            "errors": errors,
            "requests": requests,
            "baseline": base,
            "tested": tested,
            "p_value": tail,
            "baseline_requests": self._requests,
        }
        if over_span and errors < critical:
            evidence.update(span_errors=span_errors, span_requests=span_requests, span_p_value=span_tail)
        expected = (0.0, min(1.0, (critical - 1) / requests))
        # Once anomalous, it stays so while the recent polls still run above the tested proportion:
        # a lasting rise is one alert, not one per quiet minute in it.
        # Without the worst poll, as the span test: one bad minute alone does not hold it.
        holding = self._run > 0 and span_errors > tested * max(span_requests, 1.0)
        if errors < critical and not (over_span and errors > tested * requests) and not holding:
            self._learn(errors, requests)
            self._run = 0
            return Verdict(False, score, expected, None, evidence)
        self._run += 1
        kind = "level_shift" if self._run >= p.shift_after else "spike"
        return Verdict(True, score, expected, kind, evidence)

    def _learn(self, errors: float, requests: float) -> None:
        window = self._window
        if len(window) == window.maxlen:
            old_errors, old_requests = window[0]
            self._errors -= old_errors
            self._requests -= old_requests
        window.append((errors, requests))
        self._errors += errors
        self._requests += requests
        self._accepted += 1

    def _state(self) -> dict[str, Any]:
        return {
            "window": [list(w) for w in self._window],
            "recent": [list(r) for r in self._recent],
            "accepted": self._accepted,
            "run": self._run,
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        for e, n in state.get("window", []):
            self._learn(float(e), float(n))
        self._recent.extend((float(e), float(n)) for e, n in state.get("recent", []))
        self._accepted = int(state.get("accepted", self._accepted))
        self._run = int(state.get("run", 0))
