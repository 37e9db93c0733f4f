"""Keeping Python's cyclic garbage collector out of the way of a large fleet's keystrokes.

Every snapshot of 10,000 endpoints allocates tens of thousands of container objects that live for a
second or two, so CPython's full collection runs every few seconds, and each walked every object the
process holds: ~300,000 (the modules, the configuration, the table's rows), ~0.3 s of CPU under load,
during which no key is answered. Once the console has shown its first large snapshot, the objects
alive then are moved out of the collector's reach (`gc.freeze`): they are freed as usual when no longer
referenced, but never walked again, and a full collection walks only what came since (about a
quarter of the time measured at 10,000 endpoints). The young generation is then collected every 10,000
net allocations instead of 700, as the watcher does (`core/gc_tuning.py`): a keystroke that brings a
screen of new rows allocates enough for dozens of young collections and a few older ones.

Even so, a young collection landed inside one filter keystroke in three and cost it 14-50 ms: the
young generation then holds the engine's latest snapshot (tens of thousands of new objects, allocated
in its own thread) besides the keystroke's own. So while someone types into the filter no collection
starts (`hold_collections`, released by the overview's table once typing pauses); the one that came
due runs then. Reference counting frees as usual meanwhile, and a hold lasts a second at most.
"""

from __future__ import annotations

import gc

from mlops_console.core.gc_tuning import tune

LARGE_FLEET = 1000
"""Endpoints from which the first snapshot shown freezes what is alive (smaller fleets never need it)."""

_frozen = False


def freeze_after_start(endpoints: int) -> bool:
    """Collect once, then freeze every object alive and collect the young generation less often, the
    first time a snapshot of a large fleet is shown; True if it did."""
    global _frozen
    if _frozen or endpoints < LARGE_FLEET:
        return False
    _frozen = True
    gc.collect()  # garbage frozen would never be collected
    gc.freeze()
    tune()
    return True


_hold: int | None = None  # the hold in force, if any
_holds = 0


def hold_collections() -> int:
    """No automatic collection until `release_collections`; the number of the hold in force (0: none,
    the collector was disabled already and stays so)."""
    global _hold, _holds
    if _hold is None and gc.isenabled():
        gc.disable()
        _holds += 1
        _hold = _holds
    return _hold or 0


def release_collections(hold: int) -> None:
    """End the hold numbered `hold` if it is still in force (a later one is left alone); a collection
    that came due meanwhile runs at the next allocation."""
    global _hold
    if _hold is not None and hold == _hold:
        _hold = None
        gc.enable()
