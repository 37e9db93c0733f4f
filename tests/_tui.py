"""Shared by the console's pilot tests: waiting for the screen, and reading a table as plain text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable


async def settle(pilot: Pilot) -> None:  # type: ignore[type-arg]
    """Wait until workers are done and their results rendered (never a fixed sleep)."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def rows(table: DataTable) -> list[list[str]]:  # type: ignore[type-arg]
    """Every row in display order, each cell as the text a person reads."""
    return [[getattr(c, "plain", str(c)) for c in table.get_row(r.key)] for r in table.ordered_rows]


def prometheus_console(store: Any, db: Path, url: str, timeout: float) -> Any:
    """The sample console with iris-prod's figures read from the Prometheus at `url`."""
    from mlops_console.config import PrometheusSettings
    from tests import sample

    base = sample.settings(db)
    settings = base.model_copy(
        update={
            "prometheus": PrometheusSettings(url=url, timeout=timeout),
            "endpoints": [
                e.model_copy(update={"source": "prometheus"}) if e.name == "iris-prod" else e
                for e in base.endpoints
            ],
        }
    )
    return sample.console_over(store, settings, sample.SampleRegistry())
