"""Where the engine's figures come from (see `base`): the console's own probes, and inference logs."""

from __future__ import annotations

from mlops_console.core.sources.base import Loop, ScheduleStats, Sink, Source
from mlops_console.core.sources.probes import ProbeSource

# `quality` (inference logs) is imported by the engine only when an endpoint has a log: it needs numpy.
__all__ = ["Loop", "ProbeSource", "ScheduleStats", "Sink", "Source"]
