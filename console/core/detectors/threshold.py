"""Static limits, as the built-in rules have always applied them.

`above` pages when the value exceeds a fixed threshold (latency p95 over 1 s, error ratio over 5 %).
`drop` is the throughput rule: the rate fell by `threshold` (a share) below the median of its own
recent history, and by more than 3 MADs of it, never before `warmup` seconds of history.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_console.core.detectors.base import UNKNOWN, Detector, Verdict, require_above, require_at_least

MAD_SCALE = 1.4826


MAX_HISTORY = 1_000_000
"""Values a `drop` history may keep (each poll judges their median)."""


@dataclass(frozen=True)
class ThresholdParams:
    threshold: float = 1.0
    mode: str = "above"
    """`above`: value > threshold. `drop`: value below (1 - threshold) of its history's median."""
    min_count: float = 0.0
    """Events behind a value (`count`) below which it is no evidence either way."""
    raise_below_min: bool = False
    """A value with fewer than `min_count` events may still raise (never clear): latency p95."""
    history_step: float = 10.0
    history_keep: float = 1800.0
    exclude_recent: float = 60.0
    warmup: float = 300.0
    """`drop` only: seconds of history before it can say anything, so a cold baseline never pages."""
    min_median: float = 0.2
    """`drop` only: a baseline this quiet (req/s) is no baseline."""

    def __post_init__(self) -> None:
        if self.mode not in ("above", "drop"):
            raise ValueError(f"mode must be 'above' or 'drop', got {self.mode!r}")
        if not math.isfinite(self.threshold):
            raise ValueError(f"threshold must be a number, got {self.threshold}")
        require_at_least(self, 0, "min_count", "history_keep", "exclude_recent", "warmup", "min_median")
        require_above(self, 0, "history_step")
        if self.history_keep / self.history_step > MAX_HISTORY:
            raise ValueError(f"history_keep / history_step must be at most {MAX_HISTORY} values")


class ThresholdDetector(Detector):
    name = "threshold"
    Params = ThresholdParams
    params: ThresholdParams

    def __init__(self, params: ThresholdParams | None = None) -> None:
        super().__init__(params)
        self._history: deque[tuple[float, float]] = deque(
            maxlen=max(3, int(self.params.history_keep / self.params.history_step))
        )

    def update(self, at: float, value: float | None, count: float | None = None) -> Verdict:
        p = self.params
        if value is None or not math.isfinite(value):
            return UNKNOWN
        if p.mode == "drop":
            return self._drop(at, value)
        above = value > p.threshold
        enough = count is None or count >= p.min_count
        evidence = {"value": value, "threshold": p.threshold, "count": count}
        if not enough and not (above and p.raise_below_min):
            return Verdict(None, evidence=evidence)
        return Verdict(
            above,
            score=value / p.threshold if p.threshold else None,
            expected=(-math.inf, p.threshold),
            kind="above" if above else None,
            evidence=evidence,
        )

    def _drop(self, at: float, value: float) -> Verdict:
        p = self.params
        history = self._history
        if not history or at - history[-1][0] >= p.history_step:
            history.append((at, value))
        older = [v for t, v in history if at - t > p.exclude_recent]
        if len(older) < 3:
            return UNKNOWN
        median = statistics.median(older)
        mad = statistics.median(abs(v - median) for v in older)
        span = at - history[0][0]
        if span < p.warmup or median <= p.min_median:
            return UNKNOWN
        drop = 1.0 - value / median
        noisy = median - value <= 3 * MAD_SCALE * mad
        low = min(median * (1 - p.threshold), median - 3 * MAD_SCALE * mad)
        anomalous = drop >= p.threshold and not noisy
        return Verdict(
            anomalous,
            score=drop,
            expected=(low, math.inf),
            kind="drop" if anomalous else None,
            evidence={"value": value, "median": median, "mad": mad, "drop": drop, "threshold": p.threshold},
        )

    def _state(self) -> dict[str, Any]:
        return {"history": [list(point) for point in self._history]}

    def _load(self, state: Mapping[str, Any]) -> None:
        self._history.extend((float(t), float(v)) for t, v in state.get("history", []))
