"""What a rule sees (`Reading`) and what it answers (`Condition`): the seam between the engine and rules.

A rule family is a module with `DEFAULTS` (its rules and their default parameters) and `conditions()`
(a reading in, one condition per enabled rule out). It never touches the engine, the store or the
network: the same code runs live and, later, over recorded history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_console.core.quality.snapshot import QualitySnapshot
from mlops_console.core.series import ThroughputBaseline, WindowStats
from mlops_console.core.snapshot import Health


@dataclass(frozen=True, slots=True)
class Condition:
    rule: str
    endpoint: str
    active: bool | None
    """True: the condition holds. False: evidence says it is clear. None: not enough evidence either way
    (no probe yet, too few samples in the window, a version nobody reported): nothing fires, nothing
    resolves."""
    severity: str
    for_: float = 0.0
    value: float | None = None
    threshold: float | None = None
    detail: str = ""
    """Observed versus threshold in words, e.g. "p95 1840ms > 1000ms for 30s"."""
    model: str | None = None
    version: str | None = None
    interval: float = 0.0
    """Seconds between the observations behind the condition (the endpoint's probe interval)."""
    evidence: Mapping[str, Any] | None = None
    """Why a detector judged so (detector, observed value, expected band, score, baseline), JSON-able;
    kept with the alert."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One endpoint at one moment, as every rule sees it; built once per probe by the engine."""

    endpoint: str
    model: str | None
    now: float
    interval: float
    """Seconds between probes."""
    health: Health
    probes: int
    consecutive_failures: int
    consecutive_invalid: int
    last_error: str | None
    served_version: str | None
    expected_version: str | None
    alias: str | None
    window: WindowStats
    """Latency and error figures of the last minute (computed once per probe)."""
    window_source: str
    """`metrics` (the endpoint's own traffic) or `probe` (our probes)."""
    traffic_measured: bool
    """The endpoint's metrics are configured and being read: its error ratio is real traffic."""
    rps: float | None
    throughput_baseline: ThroughputBaseline | None
    """Throughput before the last minute."""
    adopted: tuple[tuple[str, str | None], ...] = ()
    """(rule, model) of open alerts no probe rule raises (a deploy that did not converge)."""
    quality: QualitySnapshot | None = None
    """The last evaluation of the endpoint's inference log (None: no log configured, or not yet)."""
    quality_interval: float = 0.0
    """Seconds between quality evaluations."""

    @property
    def version(self) -> str | None:
        return self.served_version or self.expected_version

    @property
    def answered(self) -> bool:
        """The last probe got an answer (evidence that down-type conditions are clear); a server still
        loading its model has not answered yet."""
        return self.probes > 0 and self.consecutive_failures == 0 and self.health != "loading"

    @property
    def version_mismatch(self) -> bool:
        return bool(
            self.expected_version and self.served_version and self.expected_version != self.served_version
        )


def evidence(active: bool, *, clear: bool) -> bool | None:
    """A condition's state: active, clear when the evidence says so, otherwise unknown (None)."""
    if active:
        return True
    return False if clear else None
