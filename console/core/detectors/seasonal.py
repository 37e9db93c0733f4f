"""A daily profile of a signal, learnt from accepted values, so 9 a.m. is compared with a usual 9 a.m.

The day is cut into `bins` slots (30 minutes by default). Each visit to a slot (the polls that fall in
it, one day) is averaged, and the average is folded into the slot's profile with weight `mix`, so the
profile follows the last few days whatever the poll interval. The seasonal offset of a slot is its
profile minus the mean of all visited slots: it moves values, never the overall level. It is offered
once a full day of history exists and most slots have been seen; the detector uses it only while it
makes the recent values more regular (see `robust.py`).
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

DAY = 86400.0


@functools.cache
def _bin_times(bins: int) -> tuple[float, ...]:
    return tuple((index + 0.5) * (DAY / bins) for index in range(bins))


class DailyProfile:
    # Slotted, and the levels kept as doubles with NaN for a slot never seen (every accepted value is
    # finite): a fleet of 10,000 endpoints keeps 40,000 profiles, and as lists of float objects with
    # their offsets each learnt one took about 3 KB.
    __slots__ = ("_offsets", "_profile", "_visit", "bins", "first_at", "min_coverage", "mix")

    def __init__(self, bins: int = 48, mix: float = 0.5, min_coverage: float = 0.8) -> None:
        self.bins = bins
        self.mix = mix
        self.min_coverage = min_coverage
        self._profile = array("d", [math.nan]) * bins
        self.first_at: float | None = None
        self._visit: tuple[int, float, int] | None = None
        """(absolute slot number, sum, count) of the slot being visited now."""
        self._offsets: array[float] | None = None

    @property
    def profile(self) -> list[float | None]:
        """Each slot's learnt level (None: never seen)."""
        return [None if math.isnan(p) else p for p in self._profile]

    @property
    def width(self) -> float:
        return DAY / self.bins

    def slot(self, at: float) -> int:
        return int(at // self.width)

    def bin(self, at: float) -> int:
        """The slot of the day `at` falls in (0 to `bins` - 1)."""
        return int(at // self.width) % self.bins

    def bin_times(self) -> tuple[float, ...]:
        """A time in each slot of the day (the middle of its first visit after the epoch): what a
        detector writes for a value it kept only the slot of."""
        return _bin_times(self.bins)

    def add(self, at: float, value: float) -> None:
        """Learn an accepted value (on the detector's scale, e.g. log latency)."""
        if self.first_at is None:
            self.first_at = at
        slot = self.slot(at)
        if self._visit is not None and self._visit[0] != slot:
            self._fold()
        if self._visit is None:
            self._visit = (slot, 0.0, 0)
        _, total, n = self._visit
        self._visit = (slot, total + value, n + 1)

    def _fold(self) -> None:
        assert self._visit is not None
        slot, total, n = self._visit
        self._visit = None
        if n == 0:
            return
        index = slot % self.bins
        mean = total / n
        old = self._profile[index]
        self._profile[index] = mean if math.isnan(old) else old + self.mix * (mean - old)
        self._offsets = None

    def active(self, at: float) -> bool:
        if self.first_at is None or at - self.first_at < DAY:
            return False
        seen = sum(1 for p in self._profile if not math.isnan(p))
        return seen >= self.min_coverage * self.bins

    def offsets(self) -> Sequence[float]:
        """The seasonal offset of each slot of the day (0 for a slot never seen)."""
        if self._offsets is None:
            seen = [p for p in self._profile if not math.isnan(p)]
            level = sum(seen) / len(seen) if seen else 0.0
            self._offsets = array("d", (0.0 if math.isnan(p) else p - level for p in self._profile))
        return self._offsets

    def offset(self, at: float) -> float:
        return self.offsets()[self.bin(at)]

    def to_state(self) -> dict[str, Any]:
        return {"profile": self.profile, "first_at": self.first_at, "visit": self._visit}

    def load(self, state: Mapping[str, Any]) -> None:
        profile = state.get("profile")
        if profile and len(profile) == self.bins:
            self._profile = array("d", (math.nan if p is None else float(p) for p in profile))
        self.first_at = state.get("first_at")
        visit = state.get("visit")
        self._visit = (int(visit[0]), float(visit[1]), int(visit[2])) if visit else None
        self._offsets = None
