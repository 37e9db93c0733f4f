"""The cyclic garbage collector in a watcher process.

Almost everything a probe allocates (requests, responses, coroutines, results) is freed by reference
counting, yet each allocation counts towards CPython's next young collection, due every 700 net
allocations: at 500 endpoints probed each second that was about 27 collections a second and 14-21 %
of the engine's CPU (against about 4 % in a bare aiohttp loop), finding next to nothing. Measured
under `bench.engine_scale`'s load, 20 s at N=500 (two rounds, load 11-13): with the young threshold at
10,000, 4-10 collections in 20 s instead of 530-570, and collections took 1.5-5.5 % of the CPU instead
of 18-21 %. `gc.freeze()` after start-up was tried too and left out: full collections are rare at this
heap size, and it changed nothing measurable (14-16 % of the CPU alone; as much as the threshold alone
with it).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations between two young collections (CPython's default: 700)."""


def tune() -> None:
    """Collect the young generation less often (the older ones as before)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
