"""What the engine shows the world: immutable, JSON-friendly records the TUI, CLI and store share.

Snapshots cross threads (the engine's to the UI's), so they are frozen and hold tuples: a reader can
never see a row that mixes fields of two probes, because nothing changes a published snapshot. The
engine builds a new one from its own mutable state whenever that state changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Literal

from mlops_console.core.packed import PackedFloats
from mlops_console.core.quality.snapshot import QualitySnapshot

if TYPE_CHECKING:
    from mlops_console.core.pipelines.snapshot import PipelineSnapshot

Health = Literal["up", "degraded", "loading", "down", "unknown"]
"""`loading`: the server answers but is still loading its model (not down, not serving yet)."""


@dataclass(frozen=True, slots=True)
class ProbeError:
    at: float
    error: str
    status: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "error": self.error, "status": self.status}


_TUPLE_FIELDS = ("latency_history", "rps_history", "recent_errors", "firing", "detection", "bands")
_PUBLISHED = (tuple, PackedFloats)  # a tuple of types: isinstance with a union is slower


@dataclass(frozen=True, slots=True)
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
    latency_source: Literal["metrics", "probe", "prometheus", "none"] = "none"
    rps: float | None = None
    """Requests per second over the last minute, from the endpoint's metrics."""
    rps_5m: float | None = None
    error_ratio: float | None = None
    """Share of failed requests over the last minute (metrics), else of failed probes."""
    latency_history: tuple[float, ...] | PackedFloats = ()
    """Recent probe latencies (seconds), oldest first, for sparklines; where Prometheus alone reads the
    endpoint (health from `up{}`), the medians it gave, one a round."""
    rps_history: tuple[float, ...] | PackedFloats = ()
    """Throughput (requests per second), one point per RPS_STEP, oldest first: packed doubles as the
    engine publishes it, a tuple as read back from a status row."""
    last_ok_at: float | None = None
    last_probe_at: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    probes: int = 0
    failures: int = 0
    recent_errors: tuple[ProbeError, ...] = ()
    firing: tuple[str, ...] = ()
    """Rules currently firing for this endpoint (`rule (pending)` while their `for` runs)."""
    quality: QualitySnapshot | None = None
    """The last model-quality evaluation of the endpoint's inference log (None without one)."""
    detection: tuple[str, ...] = ()
    """What each detector-judged rule says as of its last value, `rule: text` (learning its baseline,
    or the value against its expected band)."""
    stale: str | None = None
    """Why latency, throughput and errors are the last good values rather than current ones (the
    Prometheus they come from is unreachable, slow, or answered badly); None while they are current."""
    health_source: Literal["probe", "prometheus"] = "probe"
    """Where health comes from: the console's own probes, or Prometheus' `up{}` of the target."""
    bands: tuple[tuple[str, float | None, float | None], ...] = ()
    """(signal, low, high) of each detector's expected band as of its last value (None: an open side),
    drawn on the endpoint's charts."""
    discovered: bool = False
    """Found by a `[[discover]]` table, not configured: a watcher started later on the same store
    resolves its open alerts if discovery no longer finds it."""
    remembered: float | None = None
    """Discovered before the watcher restarted and not found by discovery since (it has its grace):
    when the watcher before the restart last wrote its row. Shown with that row's figures, stale, and
    never judged; None for any other endpoint."""
    prometheus_id: str | None = None
    """Its value of `[prometheus] group_by` where its figures come from Prometheus (what its detail
    charts' range queries are narrowed to); None otherwise."""

    def __post_init__(self) -> None:
        # Callers may pass lists; what is published holds tuples, so nobody can change it afterwards.
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, _PUBLISHED):
                object.__setattr__(self, name, tuple(value))

    @property
    def version_mismatch(self) -> bool:
        return bool(
            self.expected_version and self.served_version and self.expected_version != self.served_version
        )

    def to_dict(self, *, histories: bool = True) -> dict[str, Any]:
        """A JSON document (lists, not tuples); built field by field, without `asdict`'s deep copy
        (it runs for every endpoint every few seconds). Without `histories`, those two stay as the
        snapshot holds them (tuples or packed doubles): the store packs them as doubles, never JSON."""
        data = dict(zip(_FIELD_NAMES, _field_values(self), strict=True))
        if histories:
            data["latency_history"] = list(self.latency_history)
            data["rps_history"] = list(self.rps_history)
        data["firing"] = list(self.firing)
        data["detection"] = list(self.detection)
        data["bands"] = [list(band) for band in self.bands]
        data["recent_errors"] = [e.to_dict() for e in self.recent_errors]
        data["version_mismatch"] = self.version_mismatch
        data["quality"] = self.quality.to_dict() if self.quality is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointSnapshot:
        known = {k: v for k, v in data.items() if k in _FIELD_NAMES}
        known["recent_errors"] = tuple(ProbeError(**e) for e in known.get("recent_errors", ()))
        known["bands"] = tuple((str(s), low, high) for s, low, high in known.get("bands", ()))
        if known.get("quality") is not None:
            known["quality"] = QualitySnapshot.from_dict(known["quality"])
        return cls(**known)

    @classmethod
    def from_row(cls, data: Mapping[str, Any]) -> EndpointSnapshot | None:
        """`from_dict` of a stored status row, or None for a row that is no snapshot (damaged, edited by
        hand): one such row must not blank every other endpoint of a follower."""
        try:
            return cls.from_dict(dict(data))
        except (TypeError, ValueError, KeyError, AttributeError):
            return None

    @classmethod
    def shown_from_row(cls, data: Mapping[str, Any]) -> EndpointSnapshot:
        """What a follower shows of a stored status row: its snapshot, or for a row that is none, the
        endpoint by its name, health unknown, saying its row cannot be read."""
        snapshot = cls.from_row(data)
        if snapshot is not None:
            return snapshot
        reason = "its status row in the store cannot be read (damaged, or edited by hand)"
        return cls(name=str(data.get("name")), url="", adapter="unknown", last_error=reason, stale=reason)


_FIELD_NAMES = tuple(f.name for f in fields(EndpointSnapshot))
_field_values = attrgetter(*_FIELD_NAMES)

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


@dataclass(frozen=True)
class EngineSnapshot:
    at: float
    endpoints: tuple[EndpointSnapshot, ...]
    registry: str = "not configured"
    """`ok`, `connecting`, `not configured`, or `unreachable: <reason>`."""
    owner: str = "this process"
    """Who probes and notifies: `this process`, or `pid N on HOST` when following another watcher."""
    pending: tuple[str, ...] = ()
    """`rule/endpoint` pairs whose condition holds but whose `for` has not elapsed."""
    engine: EngineHealth = field(default_factory=EngineHealth)
    """Health of the engine that probes and pages (this process's, or the followed watcher's)."""
    prometheus: str = "not configured"
    """The `[prometheus]` source: `ok`, `connecting`, `not configured`, or what is wrong with it."""
    pipelines: tuple[PipelineSnapshot, ...] = ()
    """Each `[[pipelines]]` table as last read from MLflow."""
    pipelines_state: str = "not configured"
    """Reading the pipelines' runs: `ok`, `connecting`, `not configured`, or `registry unreachable: ...`."""

    def __post_init__(self) -> None:
        if not isinstance(self.endpoints, tuple):
            object.__setattr__(self, "endpoints", tuple(self.endpoints))
        if not isinstance(self.pipelines, tuple):
            object.__setattr__(self, "pipelines", tuple(self.pipelines))
        if not isinstance(self.pending, tuple):
            object.__setattr__(self, "pending", tuple(self.pending))
