"""The SQLite store: alerts, their events, the notification outbox, the audit trail, the engine lease.

`Store` is one object over one file; each group of tables has its own module (`alerts`, `outbox`,
`audit`, `auto_rollback`, `lease`, `status`, `quality`; the shift report's reads in `shift`), the
connection and migrations theirs (`base`, `schema`), and every row comes back typed (`rows`).
"""

from __future__ import annotations

from mlops_console.core.store.alerts import ALERT_STATES, AlertTables
from mlops_console.core.store.audit import AuditTrail
from mlops_console.core.store.auto_rollback import AutoRollbackDecision, AutoRollbackTables
from mlops_console.core.store.base import DEFAULT_LOCK_TIMEOUT
from mlops_console.core.store.errors import StoreError
from mlops_console.core.store.escalations import Escalations
from mlops_console.core.store.lease import Lease
from mlops_console.core.store.maintenance import MaintenanceWindow, MaintenanceWindows
from mlops_console.core.store.outbox import Outbox
from mlops_console.core.store.quality import QualityTables
from mlops_console.core.store.rows import (
    Alert,
    AlertEvent,
    AliasChange,
    AuditEntry,
    DeliveryRecord,
    EngineHealthRecord,
    LeaseHolder,
    NewAlert,
    Notification,
    OutboxMessage,
    QualityState,
    Rollup,
)
from mlops_console.core.store.shift import ShiftQueries
from mlops_console.core.store.status import EndpointStatus


class Store(
    AlertTables,
    Escalations,
    MaintenanceWindows,
    Outbox,
    AuditTrail,
    Lease,
    EndpointStatus,
    QualityTables,
    ShiftQueries,
    AutoRollbackTables,
):
    """Thread-safe facade over one SQLite file (see `base.StoreBase` for opening and locking)."""


__all__ = [
    "ALERT_STATES",
    "DEFAULT_LOCK_TIMEOUT",
    "Alert",
    "AlertEvent",
    "AliasChange",
    "AuditEntry",
    "AutoRollbackDecision",
    "DeliveryRecord",
    "EngineHealthRecord",
    "LeaseHolder",
    "MaintenanceWindow",
    "NewAlert",
    "Notification",
    "OutboxMessage",
    "QualityState",
    "Rollup",
    "Store",
    "StoreError",
]
