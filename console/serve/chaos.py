"""Fault injection for demos: added latency and a share of 500s on /invocations."""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

MAX_DELAY_MS = 60_000.0
"""A longer delay would hold every request (and the connection) for good, which no demo wants."""


def _number(payload: dict[str, Any], key: str, current: float, low: float, high: float) -> float:
    value = payload.get(key, current)
    # bool is an int subclass, and JSON allows Infinity and NaN: none of them is a setting.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{key} must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:  # an integer with hundreds of digits
        number = math.inf if value > 0 else -math.inf
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{key} must be a finite number within {low:g}..{high:g}, not {number:g}")
    return number


@dataclass
class ChaosSettings:
    delay_ms: float = 0.0
    error_rate: float = 0.0

    def update(self, payload: Any) -> None:
        """Validate everything first so a bad request changes nothing."""
        if not isinstance(payload, dict):
            raise ValueError("expected a JSON object")
        unknown = set(payload) - {"delay_ms", "error_rate"}
        if unknown:
            raise ValueError(f"unknown keys: {sorted(unknown)}")
        delay = _number(payload, "delay_ms", self.delay_ms, 0.0, MAX_DELAY_MS)
        rate = _number(payload, "error_rate", self.error_rate, 0.0, 1.0)
        self.delay_ms, self.error_rate = delay, rate

    def should_fail(self) -> bool:
        return self.error_rate > 0 and random.random() < self.error_rate

    def as_json(self) -> dict[str, float]:
        return asdict(self)
