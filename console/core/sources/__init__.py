"""Where the engine's figures come from (see `base`): the console's own probes, and inference logs."""

from __future__ import annotations

from mlops_console.core.sources.base import Loop, ScheduleStats, Sink, Source
from mlops_console.core.sources.probes import ProbeSource
from mlops_console.core.sources.quality import QualitySource

__all__ = ["Loop", "ProbeSource", "QualitySource", "ScheduleStats", "Sink", "Source"]
