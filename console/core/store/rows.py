"""Typed rows: what the store returns and what it is given to insert.

Rows are frozen: they cross threads (store worker to event loop or UI) and are never edited in place;
`dataclasses.replace` makes a changed copy. Times are epoch seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

AlertState = Literal["firing", "acknowledged", "resolved"]
DisplayState = Literal["firing", "acknowledged", "resolved", "silenced"]


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert about to be written (it has no id yet), also the text of the pages sent for it."""

    fingerprint: str
    rule: str
    endpoint: str
    severity: str
    summary: str
    started_at: float
    model: str | None = None
    version: str | None = None
    value: float | None = None
    threshold: float | None = None
    flapping: bool = False
    id: int | None = None
    """Known once written (pages for a resolve name the alert)."""
    runbook: str | None = None
    """The runbook it fires with (`Settings.runbook_for`; '' for none), stored with it. None: not
    decided here, looked up from the config whenever it is shown."""
    evidence: Mapping[str, Any] | None = None
    """Why a detector fired it (detector, observed, expected band, score, baseline): kept in the
    `fired` event's data."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One row of `alerts`. `display_state` adds `silenced` while a silence is in force."""

    id: int
    fingerprint: str
    rule: str
    endpoint: str
    model: str | None
    version: str | None
    severity: str
    state: AlertState
    summary: str
    value: float | None
    threshold: float | None
    started_at: float
    resolved_at: float | None
    acked_by: str | None
    acked_at: float | None
    ack_note: str | None
    silenced_until: float | None
    silenced_by: str | None
    flapping: bool
    last_notified_at: float | None
    updated_at: float
    display_state: DisplayState
    runbook: str | None = None
    """The runbook stored when it fired: '' for none, None for an alert stored before runbooks were."""

    @classmethod
    def from_row(cls, row: dict[str, Any], now: float | None = None) -> Alert:
        now = time.time() if now is None else now
        silenced = bool(row["silenced_until"] and row["silenced_until"] > now and row["state"] != "resolved")
        return cls(
            **{name: row[name] for name in _ALERT_COLUMNS},
            flapping=bool(row["flapping"]),
            display_state="silenced" if silenced else row["state"],
        )

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One row of an alert's timeline: fired, notified, acknowledged, silenced, resolved..."""

    id: int
    alert_id: int
    at: float
    kind: str
    actor: str | None
    note: str | None
    data: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AlertEvent:
        return cls(**{**row, "data": json.loads(row["data"]) if row["data"] else None})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message for one channel, to be queued in the outbox (or already sent directly)."""

    kind: str
    """firing | flapping | resolved | reminder | escalation | test"""
    channel: str
    """The channel's id (a hash of its URL as written)."""
    target: str
    """The channel's URL, redacted: what is stored and shown."""
    severity: str
    title: str
    body: str
    delivered_at: float | None = None
    """Set when it was already delivered straight through apprise (the store was unwritable)."""
    duration_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    """One row of the outbox: a message for one channel and its delivery state."""

    id: int
    alert_id: int | None
    kind: str
    channel: str
    target: str
    severity: str
    title: str
    body: str
    status: str
    """pending | sent | dead | silenced | cancelled"""
    attempts: int
    next_attempt_at: float
    created_at: float
    sent_at: float | None
    last_error: str | None
    sending_at: float | None = None
    """Set while a notifier sends it (`Outbox.mark_sending`); cleared when the attempt is recorded."""
    sending_by: str | None = None
    interrupted: int = 0
    """How many sends of it were cut off before their outcome was recorded (a watcher killed mid-send)."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Notification:
        return cls(**row)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery attempt of a notification."""

    id: int
    notification_id: int
    at: float
    ok: bool
    duration_ms: float | None
    error: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeliveryRecord:
        return cls(**{**row, "ok": bool(row["ok"])})


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit trail: who promoted, rolled back, deployed, acknowledged or silenced what."""

    id: int
    at: float
    actor: str
    action: str
    model: str | None
    alias: str | None
    from_version: str | None
    to_version: str | None
    reason: str | None
    result: str
    """ok | pending | refused | failed"""
    detail: dict[str, Any] | None
    alert_id: int | None
    endpoint: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AuditEntry:
        return cls(**{**row, "detail": json.loads(row["detail"]) if row["detail"] else None})

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class AliasChange:
    """A successful promote or rollback of one alias, oldest first when listed."""

    action: str
    from_version: str | None
    to_version: str | None


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds (or last held) the engine lease of a store."""

    name: str
    owner: str
    pid: int | None
    host: str | None
    acquired_at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LeaseHolder:
        return cls(**row)

    @property
    def who(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True, slots=True)
class EngineHealthRecord:
    """The lease holder's own health as it last wrote it."""

    owner: str
    state: str
    reason: str | None
    updated_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EngineHealthRecord:
        return cls(**row)


@dataclass(frozen=True, slots=True)
class Rollup:
    """One endpoint-minute of probe results and traffic figures."""

    endpoint: str
    minute: int
    probes: int
    failures: int
    p50: float | None
    p95: float | None
    p99: float | None
    rps: float | None
    error_ratio: float | None
    samples: int | None = None
    """Successful probes (latency observations) of the minute."""
    latency_mean: float | None = None
    latency_min: float | None = None
    latency_max: float | None = None
    requests: float | None = None
    """Requests behind `error_ratio` (the last minute of traffic, or of probes)."""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Rollup:
        return cls(**row)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_ALERT_COLUMNS = tuple(f.name for f in fields(Alert) if f.name not in ("flapping", "display_state"))


@dataclass(frozen=True, slots=True)
class QualityState:
    """Where the engine stopped reading an endpoint's inference log, and what it learned there."""

    endpoint: str
    log: str
    offset: dict[str, Any]
    """A `LogOffset` as a JSON object."""
    learned: dict[str, Any]
    """References learned from versions' first rows and the stuck detector's state, as JSON."""
    updated_at: float
