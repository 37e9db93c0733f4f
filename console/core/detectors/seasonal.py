"""A daily profile of a signal, so the morning ramp is expected at 9 a.m. and a 3 a.m. surge is not.

The day is cut into `bins` slots (30 minutes by default). The profile learns, per slot, by how much
accepted values stood above or below the baseline's prediction (as in Holt-Winters: the seasonal
part is what the level does not explain). Each visit to a slot (its polls on one day) is averaged
and folded into the slot with weight `mix`, so the profile follows the last few days whatever the
poll interval. Because it learns prediction errors rather than levels, a lasting level change moves
the baseline, not the profile. It is used once a full day of history exists and most slots have
been seen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DAY = 86400.0


class DailyProfile:
    def __init__(self, bins: int = 48, mix: float = 0.5, min_coverage: float = 0.8) -> None:
        self.bins = bins
        self.mix = mix
        self.min_coverage = min_coverage
        self.profile: list[float | None] = [None] * bins
        self.first_at: float | None = None
        self._visit: tuple[int, float, int] | None = None
        """(absolute slot number, sum, count) of the slot being visited now."""
        self._offsets: list[float] | None = None

    @property
    def width(self) -> float:
        return DAY / self.bins

    def slot(self, at: float) -> int:
        return int(at // self.width)

    def add(self, at: float, error: float) -> None:
        """Learn how far an accepted value stood from the prediction (on the detector's scale)."""
        if self.first_at is None:
            self.first_at = at
        slot = self.slot(at)
        if self._visit is not None and self._visit[0] != slot:
            self._fold()
        if self._visit is None:
            self._visit = (slot, 0.0, 0)
        _, total, n = self._visit
        self._visit = (slot, total + error, n + 1)

    def _fold(self) -> None:
        assert self._visit is not None
        slot, total, n = self._visit
        self._visit = None
        if n == 0:
            return
        index = slot % self.bins
        old = self.profile[index]
        self.profile[index] = total / n if old is None else old + self.mix * total / n
        self._offsets = None

    def active(self, at: float) -> bool:
        if self.first_at is None or at - self.first_at < DAY:
            return False
        seen = sum(1 for p in self.profile if p is not None)
        return seen >= self.min_coverage * self.bins

    def offsets(self) -> list[float]:
        """The seasonal offset of each slot of the day (0 for a slot never seen)."""
        if self._offsets is None:
            self._offsets = [0.0 if p is None else p for p in self.profile]
        return self._offsets

    def offset(self, at: float) -> float:
        return self.offsets()[self.slot(at) % self.bins]

    def to_state(self) -> dict[str, Any]:
        return {"profile": list(self.profile), "first_at": self.first_at, "visit": self._visit}

    def load(self, state: Mapping[str, Any]) -> None:
        profile = state.get("profile")
        if profile and len(profile) == self.bins:
            self.profile = [None if p is None else float(p) for p in profile]
        self.first_at = state.get("first_at")
        visit = state.get("visit")
        self._visit = (int(visit[0]), float(visit[1]), int(visit[2])) if visit else None
        self._offsets = None
