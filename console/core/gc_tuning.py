"""The cyclic garbage collector in a watcher process.

Almost everything a probe allocates (requests, responses, coroutines, results) is freed by reference
counting, yet each allocation counts towards CPython's next young collection, due every 700 net
allocations: at 500 endpoints probed each second that was about 27 collections a second and 14-21 %
of the engine's CPU (against about 4 % in a bare aiohttp loop), finding next to nothing. Measured
under `bench.engine_scale`'s load, 20 s at N=500 (two rounds, load 11-13): with the young threshold at
10,000, 4-10 collections in 20 s instead of 530-570, and collections took 1.5-5.5 % of the CPU instead
of 18-21 %.

A full collection walks every object the process holds, and most of them are what start-up and the
first probes built and what lives as long as the process (settings, endpoint states, their rings and
detectors, modules): at 1,000 endpoints about 180,000 of the 210,000 objects tracked, and one full
collection held the event loop for 280 ms of its CPU (`bench.loop_stalls`, load 6), the longest stall
it had. So once the engine leads and every endpoint has been probed, those objects are frozen
(`gc.freeze`: moved to a generation no collection walks); a full collection after it took 65 ms in the
same run. Frozen objects are still freed by reference counting; a cycle among them that becomes
garbage later is not collected, and that is bounded: one freeze per process, of what existed then
(the console does the same for its screens: `tui/collector.py`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_console.core.engine import Engine

log = logging.getLogger("mlops_console.engine")

YOUNG_THRESHOLD = 10_000
"""Net container allocations between two young collections (CPython's default: 700)."""
FREEZE_POLL = 0.5
"""Seconds between two looks at whether the engine has settled."""


def tune() -> None:
    """Collect the young generation less often (the older ones as before)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def settled(engine: Engine) -> bool:
    """The engine leads and every endpoint has been read once (by a probe, or a Prometheus round,
    answered or not): its long-lived state is built."""
    if not engine.leader:
        return False
    for state in engine.endpoints.values():
        last = state.last_probe_at if state.health_source == "probe" else state.round_at
        if last is None:
            return False
    return True


async def freeze_when(ready: Callable[[], bool], poll: float = FREEZE_POLL) -> None:
    """Freeze what the process holds (see the module's text) once `ready()` is true; once."""
    while not ready():
        await asyncio.sleep(poll)
    started = time.perf_counter()
    gc.collect()  # garbage frozen would never be collected (one full collection, at start-up)
    gc.freeze()
    log.info(
        "%d long-lived objects left out of garbage collection (%.0f ms)",
        gc.get_freeze_count(),
        (time.perf_counter() - started) * 1000,
        extra={"event": "gc_frozen"},
    )
