"""`slo = { availability = 0.999, latency_p95 = "250ms" }`: service-level objectives of an endpoint.

Set on an `[[endpoints]]` table, or at the top level as the default for every endpoint (an endpoint's
own keys win, one by one). Each objective gets a multi-window burn-rate rule (`slo_availability`,
`slo_latency`), see `core/conditions/slo.py`.
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from mlops_console.config.values import Duration, Section


class SloSettings(Section):
    availability: float | None = None
    """Share of requests (or probes) that must succeed, e.g. 0.999."""
    latency_p95: Duration | None = None
    """95 % of requests must be faster than this (e.g. "250ms")."""
    latency_p99: Duration | None = None
    """99 % of requests must be faster than this."""
    period: Duration = 30 * 86400.0
    """The SLO period over which the error budget is counted (default 30 days)."""

    @field_validator("availability")
    @classmethod
    def _share(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value < 1.0:
            raise ValueError(f"must be a share between 0 and 1 such as 0.999, got {value}")
        return value

    @field_validator("latency_p95", "latency_p99")
    @classmethod
    def _latency(cls, value: float | None) -> float | None:
        if value is not None and not 0.0 < value <= 3600.0:
            raise ValueError(f'must be a latency above 0 such as "250ms", got {value}')
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: float) -> float:
        if not 3600.0 <= value <= 400 * 86400.0:
            raise ValueError(f'must be between 1h and 400d (e.g. "30d"), got {value:g} s')
        return value

    @model_validator(mode="after")
    def _one_latency(self) -> SloSettings:
        if self.latency_p95 is not None and self.latency_p99 is not None:
            raise ValueError("set one latency objective: `latency_p95` or `latency_p99`, not both")
        return self

    def merged(self, own: SloSettings | None) -> SloSettings:
        """These defaults under an endpoint's own objectives (its keys win one by one)."""
        if own is None:
            return self
        values = self.model_dump()
        given = own.model_dump(exclude_unset=True)
        if {"latency_p95", "latency_p99"} & set(given):
            values["latency_p95"] = values["latency_p99"] = None  # one latency objective replaces another
        values.update(given)
        return SloSettings.model_validate(values)

    @property
    def latency(self) -> tuple[float, float] | None:
        """(objective, target seconds): the share of requests that must be faster than the target."""
        if self.latency_p99 is not None:
            return 0.99, self.latency_p99
        if self.latency_p95 is not None:
            return 0.95, self.latency_p95
        return None
