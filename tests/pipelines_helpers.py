"""A pipeline's MLflow runs made at controlled times, in a real sqlite-backed tracking store."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Job:
    """One pipeline's experiment: runs are created with the times and outcome a test needs."""

    client: Any
    experiment: str
    experiment_id: str

    @classmethod
    def create(cls, client: Any, prefix: str = "job") -> Job:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        return cls(client, name, client.create_experiment(name))

    def run(
        self,
        status: str = "FINISHED",
        *,
        ended_ago: float = 0.0,
        took: float = 600.0,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """A run that ended `ended_ago` seconds ago after `took` seconds (RUNNING: started `took` ago)."""
        now = time.time()
        end = now - ended_ago
        start = end - took
        run = self.client.create_run(self.experiment_id, start_time=int(start * 1000), tags=tags or {})
        run_id: str = run.info.run_id
        for key, value in (metrics or {}).items():
            self.client.log_metric(run_id, key, value, timestamp=int(end * 1000))
        if status != "RUNNING":
            self.client.set_terminated(run_id, status, end_time=int(end * 1000))
        return run_id

    def history(self, count: int = 6, *, newest_ended_ago: float = 1200.0, spacing: float = 1800.0) -> None:
        """`count` ordinary successful runs, about 10 minutes each, 1000 rows, the newest ended
        `newest_ended_ago` seconds ago."""
        for i in reversed(range(count)):
            self.run(
                ended_ago=newest_ended_ago + i * spacing,
                took=600.0 + (i % 3) * 10,
                metrics={"rows_processed": 1000.0 + (i % 3) * 10},
            )
