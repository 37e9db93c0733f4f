"""A baseline that learns each endpoint's normal: median and MAD of recent accepted values.

A value is anomalous when it is both far out in robust terms (|value - median| > `z` robust standard
deviations, 1.4826 MAD) and far out in relative terms (at least `rel_floor`, 20 %, away from the
median), in the directions asked for (latency: up only; throughput: both). Latency and traffic are
compared on a log scale, where "three times slower" is the same step at 8 ms and at 800 ms.

- Anomalous values are not learnt, so an incident never becomes its own baseline. When the signal
  stays out in the same direction for `accept_after` polls and has settled (no longer climbing or
  falling), the new level is accepted: the baseline is rebuilt from it and the verdict says
  `level_shift` with `accepted: true`.
- A second, long reference (`long_window` polls of accepted values, one kept in `long_step`) catches
  slow ramps that the short baseline would follow: the value must clear it by `long_floor` (50 %).
- Once a day of history exists, a daily profile (see `seasonal.py`) is taken out before comparing,
  so the morning traffic ramp is expected and a 3 a.m. surge is not.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops_console.core.detectors.base import UNKNOWN, Detector, Verdict, require_above, require_at_least
from mlops_console.core.detectors.seasonal import DailyProfile
from mlops_console.core.rings import PointRing
from mlops_console.core.series import median_and_mad

MAD_SCALE = 1.4826
_TINY = math.ulp(0.0)
MIN_LONG_POINTS = 10
SEASONAL_GAIN = 0.9
"""The daily profile is used when it shrinks the spread of the recent values to below this share."""


@dataclass(frozen=True)
class RobustParams:
    direction: str = "both"
    """`up`, `down` or `both`: which excursions are anomalies. Excursions the other way are not
    learnt either, until they last (accepted like any level shift)."""
    log: bool = True
    offset: float = 1e-3
    """Added before taking the log, so a zero (no traffic) stays finite. In the signal's unit."""
    z: float = 3.5
    rel_floor: float = 0.2
    window: int = 60
    """Accepted values behind the median and MAD."""
    warmup: int = 30
    """Accepted values before any verdict: a cold baseline never pages."""
    min_spread: float = 0.03
    """Smallest robust standard deviation assumed (on the detector's scale): a flat line is not exact."""
    min_count: float = 0.0
    """Events behind a value (`count`) below which it is no evidence and is not learnt."""
    count_spread: float = 0.0
    """Sampling error of a value from `count` events, as a robust standard deviation at one event
    (shrinking with the square root of the count): a p95 of three requests proves little."""
    accept_after: int = 120
    """Anomalous polls in one direction after which the new level is accepted (0: never)."""
    shift_after: int = 10
    """Anomalous polls in one direction after which the excursion is reported as a level shift."""
    long_window: int = 360
    """Accepted polls behind the long reference that catches slow ramps (0: no ramp check)."""
    long_step: int = 6
    long_floor: float = 0.5
    seasonal: bool = True
    season_bins: int = 48
    up_kind: str = "spike"
    down_kind: str = "drop"
    persistence: tuple[int, int] = (3, 5)
    """Anomalous verdicts among the last polls that make the condition hold (used by the evaluator)."""

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down", "both"):
            raise ValueError(f"direction must be 'up', 'down' or 'both', got {self.direction!r}")
        if self.warmup < 3 or self.window < 3:
            raise ValueError("window and warmup must be at least 3")
        if self.season_bins < 1:
            raise ValueError(f"season_bins must be at least 1, got {self.season_bins}")
        require_above(self, 0, "z", "min_spread")
        require_at_least(self, 0, "offset", "rel_floor", "long_floor", "min_count", "count_spread")
        require_at_least(self, 0, "long_window")
        require_at_least(self, 1, "shift_after", "long_step")
        if self.accept_after == 1 or self.accept_after < 0:  # a level is settled over two halves
            raise ValueError(f"accept_after must be 0 (never) or at least 2, got {self.accept_after}")


class RobustDetector(Detector):
    name = "robust"
    Params = RobustParams
    params: RobustParams

    def __init__(self, params: RobustParams | None = None) -> None:
        super().__init__(params)
        p = self.params
        # Arrays, not deques of tuples: a fleet keeps two or more of these detectors an endpoint. A
        # value's time is needed only for its slot of the daily profile, so the slot is what is kept:
        # a byte a value where a time took eight (at 10,000 endpoints with two each, 19 MB less).
        slot_type = "B" if p.season_bins <= 256 else "H" if p.season_bins <= 65536 else "Q"
        self._window: PointRing[int] = PointRing(p.window, slot_type)
        self._long: PointRing[int] = PointRing(max(1, p.long_window // p.long_step), slot_type)
        self._accepted = 0
        self._run: PointRing[int] = PointRing(max(p.window, p.accept_after, p.shift_after), slot_type)
        self._run_dir = 0
        self._run_len = 0
        self._gap = 0
        self._profile = DailyProfile(bins=p.season_bins)

    # -- scale -----------------------------------------------------------------------------------------
    def _to_scale(self, value: float) -> float:
        p = self.params
        # With no offset, a zero is the smallest double: a drop to nothing, not a math domain error.
        return math.log(max(max(value, 0.0) + p.offset, _TINY)) if p.log else value

    def _from_scale(self, y: float) -> float:
        p = self.params
        if not p.log:
            return y
        try:
            return max(math.exp(y) - p.offset, 0.0)
        except OverflowError:  # a band edge past the largest double (a very large z): open
            return math.inf

    def _limits(self, sigma: float, center: float, floor: float) -> tuple[float, float]:
        """How far up and down a value may go from `center` (on the detector's scale) and stay normal."""
        p = self.params
        if p.log:
            return max(p.z * sigma, math.log1p(floor)), max(p.z * sigma, -math.log1p(-min(floor, 0.99)))
        spread = max(p.z * sigma, floor * abs(center))
        return spread, spread

    def _baseline(self, points: Iterable[tuple[int, float]], active: bool) -> tuple[float, float]:
        """Median and robust spread of `(slot of the day, value)` points; `active`: less the profile."""
        residuals: Sequence[float]
        if active:
            offsets = self._profile.offsets()
            residuals = [y - offsets[slot] for slot, y in points]
        elif isinstance(points, PointRing):
            residuals = points.values()  # judged every period: no (slot, value) tuple per point
        else:
            residuals = [y for _, y in points]
        median, mad = median_and_mad(residuals)  # statistics.median's floats, with one sort
        return median, max(MAD_SCALE * mad, self.params.min_spread)

    # -- the verdict -----------------------------------------------------------------------------------
    def update(self, at: float, value: float | None, count: float | None = None) -> Verdict:
        p = self.params
        if value is None or not math.isfinite(value):
            return UNKNOWN
        if count is not None and count < p.min_count:
            return Verdict(None, evidence={"value": value, "count": count, "min_count": p.min_count})
        y = self._to_scale(value)
        if self._accepted < p.warmup:
            self._learn(at, y)
            return Verdict(None, evidence={"value": value, "warming_up": self._accepted, "of": p.warmup})
        median, sigma = self._baseline(self._window, False)
        seasonal = p.seasonal and self._profile.active(at)
        if seasonal:
            # The profile is used while it makes the recent values more regular than they are raw:
            # a profile that learnt something that was not daily (a change on its first day) is not.
            seasonal_median, seasonal_sigma = self._baseline(self._window, True)
            seasonal = seasonal_sigma < SEASONAL_GAIN * sigma
            if seasonal:
                median, sigma = seasonal_median, seasonal_sigma
        season = self._profile.offset(at) if seasonal else 0.0
        if count and p.count_spread:
            sigma = max(sigma, p.count_spread / math.sqrt(count))
        center = median + season
        up, down = self._limits(sigma, center, p.rel_floor)
        deviation = y - center
        direction = self._direction(deviation, up, down)
        ramp = False
        if direction == 0 and p.long_window and len(self._long) >= MIN_LONG_POINTS:
            long_median, long_sigma = self._baseline(self._long, seasonal)
            long_up, long_down = self._limits(long_sigma, long_median + season, p.long_floor)
            direction = self._direction(y - long_median - season, long_up, long_down)
            ramp = direction != 0
        score = deviation / sigma
        evidence: dict[str, Any] = {
            "value": value,
            "median": self._from_scale(center),
            "spread": sigma,
            "z": round(score, 3),
            "baseline_n": len(self._window),
            "seasonal": seasonal,
        }
        # A direction that does not alert has no edge: a latency that got faster is within its band.
        low = self._from_scale(center - down) if p.direction != "up" else (0.0 if p.log else -math.inf)
        high = self._from_scale(center + up) if p.direction != "down" else math.inf
        expected = (low, high)
        if direction == 0:
            self._learn(at, y)
            self._gap += 1
            if self._gap > p.persistence[1]:
                self._run_dir, self._run_len = 0, 0
                self._run.clear()
            return Verdict(False, score, expected, None, evidence)
        if direction != self._run_dir:
            self._run.clear()
            self._run_dir, self._run_len = direction, 0
        self._run.append((self._profile.bin(at), y))
        self._run_len += 1
        self._gap = 0
        if p.accept_after and self._run_len >= p.accept_after and self._settled():
            return self._accept(median, seasonal, season, evidence, expected)
        if p.direction != "both" and (direction > 0) != (p.direction == "up"):
            # Out the other way (latency got faster): not an alert, but not learnt either until it
            # lasts, so a lasting change moves the baseline at once instead of seeping into it.
            return Verdict(False, score, expected, None, evidence)
        if ramp:
            kind = "ramp"
        elif self._run_len >= p.shift_after:
            kind = "level_shift"
        else:
            kind = p.up_kind if direction > 0 else p.down_kind
        evidence["direction"] = "up" if direction > 0 else "down"
        evidence["anomalous_polls"] = self._run_len
        return Verdict(True, score, expected, kind, evidence)

    @staticmethod
    def _direction(deviation: float, up: float, down: float) -> int:
        """1 above the band, -1 below it, 0 inside (whichever directions alert)."""
        if deviation > up:
            return 1
        if -deviation > down:
            return -1
        return 0

    def _settled(self) -> bool:
        """The excursion has found its level: the two halves of its last `window` polls agree.

        A ramp that is still climbing is not a new normal yet (its median would be left behind)."""
        points = [y for _, y in list(self._run)[-self.params.window :]]
        half = len(points) // 2
        first, second = statistics.median(points[:half]), statistics.median(points[half:])
        return abs(second - first) <= self._limits(0.0, first, self.params.rel_floor / 2)[0]

    def _accept(
        self,
        old_median: float,
        seasonal: bool,
        season: float,
        evidence: dict[str, Any],
        expected: tuple[float, float],
    ) -> Verdict:
        """The excursion has lasted and settled: it is the new normal. Rebuild the baselines from it.

        `old_median` is the level it left, on the same footing (`seasonal` or raw) as the new one."""
        p = self.params
        points = list(self._run)[-p.window :]
        new_median = self._baseline(points, seasonal)[0]
        # A profile learnt at the old level would take the step for a daily pattern: learn it afresh.
        self._profile = DailyProfile(bins=p.season_bins)
        self._window.clear()
        self._window.extend(points)
        self._long.clear()
        self._long.extend(points[:: p.long_step])
        self._run.clear()
        self._run_dir, self._run_len, self._gap = 0, 0, 0
        evidence.update(
            accepted=True,
            previous_median=self._from_scale(old_median + season),
            new_median=self._from_scale(new_median + season),
        )
        return Verdict(False, evidence["z"], expected, "level_shift", evidence)

    def _learn(self, at: float, y: float) -> None:
        point = (self._profile.bin(at), y)
        self._window.append(point)
        if self._accepted % self.params.long_step == 0:
            self._long.append(point)
        self._accepted += 1
        if self.params.seasonal:
            self._profile.add(at, y)

    # -- state -----------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        # Written as (time, value) points, each at a time in its slot: what earlier versions wrote
        # and read, and all a detector reads back.
        at = self._profile.bin_times()
        return {
            "window": [[at[slot], y] for slot, y in self._window],
            "long": [[at[slot], y] for slot, y in self._long],
            "accepted": self._accepted,
            "run": [[at[slot], y] for slot, y in self._run],
            "run_dir": self._run_dir,
            "run_len": self._run_len,
            "gap": self._gap,
            "profile": self._profile.to_state(),
        }

    def _load(self, state: Mapping[str, Any]) -> None:
        self._window.extend(self._points(state.get("window", [])))
        self._long.extend(self._points(state.get("long", [])))
        self._accepted = int(state.get("accepted", len(self._window)))
        self._run.extend(self._points(state.get("run", [])))
        self._run_dir = int(state.get("run_dir", 0))
        self._run_len = int(state.get("run_len", 0))
        self._gap = int(state.get("gap", 0))
        self._profile.load(state.get("profile", {}))

    def _points(self, saved: Iterable[Sequence[Any]]) -> Iterator[tuple[int, float]]:
        """Saved `(time, value)` points as `(slot of the day, value)`."""
        for t, y in saved:
            at = float(t)
            if not math.isfinite(at):
                raise ValueError(f"a saved point's time must be a finite number, got {t!r}")
            yield self._profile.bin(at), float(y)
