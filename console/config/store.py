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
