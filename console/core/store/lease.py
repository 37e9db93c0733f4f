"""The engine lease (one process probes and notifies per store) and the lease holder's own health."""

from __future__ import annotations

import os

from mlops_console.core.store.base import StoreBase, now
from mlops_console.core.store.rows import EngineHealthRecord, LeaseHolder


class Lease(StoreBase):
    def acquire_lease(self, owner: str, ttl: float, name: str = "engine") -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one."""
        at = now()
        with self.write() as db:
            rows = self.query("SELECT * FROM lease WHERE name=?", [name])
            if rows and rows[0]["owner"] != owner and rows[0]["expires_at"] > at:
                return False
            acquired = rows[0]["acquired_at"] if rows and rows[0]["owner"] == owner else at
            db["lease"].upsert(  # type: ignore[union-attr]
                {
                    "name": name,
                    "owner": owner,
                    "pid": os.getpid(),
                    "host": os.uname().nodename,
                    "acquired_at": acquired,
                    "expires_at": at + ttl,
                },
                pk="name",
            )
        return True

    def release_lease(self, owner: str, name: str = "engine") -> None:
        with self.write() as db:
            db.execute("DELETE FROM lease WHERE name=? AND owner=?", [name, owner])

    def lease_holder(self, name: str = "engine") -> LeaseHolder | None:
        """The unexpired lease, if any."""
        rows = self.query("SELECT * FROM lease WHERE name=? AND expires_at>?", [name, now()])
        return LeaseHolder.from_row(rows[0]) if rows else None

    def lease(self, name: str = "engine") -> LeaseHolder | None:
        """The lease as it stands, expired or not; None once released."""
        rows = self.query("SELECT * FROM lease WHERE name=?", [name])
        return LeaseHolder.from_row(rows[0]) if rows else None

    def engine_health(self, owner: str) -> EngineHealthRecord | None:
        rows = self.query("SELECT * FROM engine_health WHERE owner=?", [owner])
        return EngineHealthRecord.from_row(rows[0]) if rows else None

    def last_engine_health(self) -> EngineHealthRecord | None:
        """The health most recently written by any engine (the last one to hold the lease)."""
        rows = self.query("SELECT * FROM engine_health ORDER BY updated_at DESC LIMIT 1")
        return EngineHealthRecord.from_row(rows[0]) if rows else None
