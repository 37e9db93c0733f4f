"""What the engine shows the world: plain, JSON-friendly records the TUI, CLI and store share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Health = Literal["up", "degraded", "loading", "down", "unknown"]
"""`loading`: the server answers but is still loading its model (not down, not serving yet)."""


@dataclass
class ProbeError:
    at: float
    error: str
    status: int | None = None


@dataclass
class EndpointSnapshot:
    """One endpoint as of the last probe. Latencies in seconds; None means unknown, never zero."""

    name: str
    url: str
    adapter: str
    model: str | None = None
    alias: str | None = None
    health: Health = "unknown"
    expected_version: str | None = None
    """Version the registry alias points to."""
    served_version: str | None = None
    """Version the endpoint says it serves (None where the adapter cannot tell)."""
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    latency_source: Literal["metrics", "probe", "none"] = "none"
    rps: float | None = None
    """Requests per second over the last minute, from the endpoint's metrics."""
    rps_5m: float | None = None
    error_ratio: float | None = None
    """Share of failed requests over the last minute (metrics), else of failed probes."""
    latency_history: list[float] = field(default_factory=list)
    """Recent probe latencies (seconds), oldest first, for sparklines."""
    rps_history: list[float] = field(default_factory=list)
    last_ok_at: float | None = None
    last_probe_at: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    probes: int = 0
    failures: int = 0
    recent_errors: list[ProbeError] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    """Rules currently firing for this endpoint."""

    @property
    def version_mismatch(self) -> bool:
        return bool(
            self.expected_version and self.served_version and self.expected_version != self.served_version
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["version_mismatch"] = self.version_mismatch
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointSnapshot:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["recent_errors"] = [ProbeError(**e) for e in known.get("recent_errors", [])]
        return cls(**known)


EngineState = Literal["running", "degraded", "stalled", "failed", "stopped"]


@dataclass(frozen=True)
class EngineHealth:
    """Whether the engine that probes and pages is doing its job, and if not, why."""

    state: EngineState = "running"
    """`running`; `degraded` (a task is restarting, or the store refuses alert writes); `stalled` (no
    probe or store update for too long); `failed` (gave up; `watch` exits non-zero); `stopped`."""
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "running"

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "reason": self.reason}


@dataclass
class EngineSnapshot:
    at: float
    endpoints: list[EndpointSnapshot]
    registry: str = "not configured"
    """`ok`, `connecting`, `not configured`, or `unreachable: <reason>`."""
    owner: str = "this process"
    """Who probes and notifies: `this process`, or `pid N on HOST` when following another watcher."""
    pending: list[str] = field(default_factory=list)
    """`rule/endpoint` pairs whose condition holds but whose `for` has not elapsed."""
    engine: EngineHealth = field(default_factory=EngineHealth)
    """Health of the engine that probes and pages (this process's, or the followed watcher's)."""
