"""Fault injection for demos: added latency and a share of 500s on /invocations."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any


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
        delay = float(payload.get("delay_ms", self.delay_ms))
        rate = float(payload.get("error_rate", self.error_rate))
        if delay < 0:
            raise ValueError("delay_ms must be >= 0")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("error_rate must be within 0.0..1.0")
        self.delay_ms, self.error_rate = delay, rate

    def should_fail(self) -> bool:
        return self.error_rate > 0 and random.random() < self.error_rate

    def as_json(self) -> dict[str, float]:
        return asdict(self)
