"""The seam between the engine and where its figures come from.

A source feeds endpoint states while the engine leads: the console's own probes (`probes`) and
the endpoints' inference logs (`quality`); a Prometheus server later, one module beside them. The
engine supervises the loops a source names, closes the source when it stops leading, and does not
care which source a value came from. Sources report through the `Sink` the engine gives them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mlops_console.core.adapters import ProbeResult
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.quality.snapshot import QualitySnapshot

Loop = Callable[[], Awaitable[None]]


@dataclass
class ScheduleStats:
    """How well the probe schedule is kept, for benchmarks and `status`."""

    probes: int = 0
    scheduled: int = 0
    lags: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))


class Sink(Protocol):
    """Where a source delivers what it observed (the engine: record, then evaluate the rules)."""

    def probed(self, state: EndpointState, result: ProbeResult, now: float) -> None: ...

    def quality_evaluated(
        self, state: EndpointState, quality: QualitySnapshot, every: float, now: float
    ) -> None:
        """An evaluation of the endpoint's inference log (every `every` seconds)."""
        ...

    def endpoints_found(self, names: Collection[str]) -> None:
        """Discovery found endpoints new to the engine (their detectors continue from the stored state)."""
        ...

    def endpoint_gone(self, name: str, reason: str, now: float) -> None:
        """A discovered endpoint went for good: its open alerts resolve, saying `reason`, and its
        status row goes."""
        ...


class Source(Protocol):
    async def open(self) -> None:
        """Acquire what the loops share (an HTTP session...), when the engine starts leading."""

    def loops(self, sink: Sink) -> Mapping[str, Loop]:
        """Named loops the engine runs, supervised, while it leads."""

    async def close(self) -> None:
        """Release what `open` acquired (the engine stopped leading, or stops)."""

    async def once(self) -> None:
        """One observation of every endpoint, without the rules (for `mlops-console status`)."""
