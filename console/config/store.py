"""`[store]`: the SQLite file alerts, their pages and the audit trail live in."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from mlops_console import locations
from mlops_console.config.values import Duration, Section


class StoreSettings(Section):
    path: Path = Field(default_factory=locations.default_store_path)
    """SQLite file holding alerts, events, notifications and the audit trail."""
    lock_timeout: Duration = Field(default=10.0, ge=0, le=3600)
    """Seconds a command (ack, silence, promote...) waits for another process's write lock before it
    fails; `watch` waits as long as it takes and says so this often."""
    history: Duration = Field(default=30 * 86400.0, ge=3600, le=400 * 86400)
    """How long per-minute history (rollups) is kept; older minutes are pruned every hour (1h to
    400d; 30 days of one endpoint is 43,200 rows, about 4 MB)."""
