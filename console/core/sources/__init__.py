"""Where the engine's figures come from (see `base`): the console's own probes today."""

from __future__ import annotations

from mlops_console.core.sources.base import Loop, ScheduleStats, Sink, Source
from mlops_console.core.sources.probes import ProbeSource

__all__ = ["Loop", "ProbeSource", "ScheduleStats", "Sink", "Source"]
