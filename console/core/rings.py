"""Bounded rings of numbers kept compact: a fleet of 10,000 endpoints holds hundreds of thousands of
them (throughput histories, the detectors' windows), and an empty `deque` alone takes 760 bytes."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar

from mlops_console.core.packed import PackedFloats

__all__ = ["PointRing"]

At = TypeVar("At", int, float)


class PointRing(Generic[At]):
    """The newest `maxlen` `(time, value)` points, oldest first, as two arrays of doubles: 16 bytes a
    point where a deque of tuples takes about 100 (a fleet of 10,000 endpoints keeps 1.8 million).

    `at_type` is the array type code of the first member: `B` keeps a small whole number (a slot of
    the day, where a detector needs no more of a time) in one byte instead of eight."""

    __slots__ = ("_at", "_ordered", "_value", "maxlen")

    def __init__(self, maxlen: int, at_type: str = "d") -> None:
        self.maxlen = maxlen
        self._at: array[Any] = array(at_type)
        self._value = array("d")
        self._ordered = True
        """Every point's time is at or after the one before (until `clear`)."""

    def append(self, point: tuple[At, float]) -> None:
        if len(self._at) >= self.maxlen:
            del self._at[0], self._value[0]
        if self._at and point[0] < self._at[-1]:
            self._ordered = False
        self._at.append(point[0])
        self._value.append(point[1])

    def extend(self, points: Iterable[tuple[At, float]]) -> None:
        for at, value in points:
            if self._at and at < self._at[-1]:
                self._ordered = False
            self._at.append(at)
            self._value.append(value)
        extra = len(self._at) - self.maxlen
        if extra > 0:
            del self._at[:extra], self._value[:extra]

    def clear(self) -> None:
        del self._at[:], self._value[:]
        self._ordered = True

    def values(self, last: int | None = None) -> PackedFloats:
        """The values alone (the newest `last` of them), packed: a snapshot publishes them."""
        return PackedFloats(self._value if last is None else self._value[-last:])

    def values_older_than(self, now: float, age: float) -> array[float]:
        """The values of the points more than `age` seconds before `now`, oldest first (asked for every
        endpoint every round, of up to half an hour of points: found by bisection where the times are
        in order, as a ring appended to in time order keeps them)."""
        at = self._at
        if not self._ordered:
            return array("d", (v for t, v in zip(at, self._value, strict=True) if now - t > age))
        end = bisect_left(at, now - age)
        # `now - t > age` exactly as each point would be judged alone (the subtraction rounds).
        while end > 0 and not now - at[end - 1] > age:
            end -= 1
        while end < len(at) and now - at[end] > age:
            end += 1
        return self._value[:end]

    def __len__(self) -> int:
        return len(self._at)

    def __getitem__(self, index: int) -> tuple[At, float]:
        return self._at[index], self._value[index]

    def __iter__(self) -> Iterator[tuple[At, float]]:
        return zip(self._at, self._value, strict=True)
