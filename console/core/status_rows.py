"""Which status rows and rollups the store does not hold yet: the lease holder writes a row only when
its content changed since its last write, not every round.

Followers and a restarted watcher read these rows; they stay current because every write that
succeeded is remembered, and whatever the store may hold from someone else (another lease holder, an
earlier run) is written again in full: `reset` when this engine starts leading, and every
`REWRITE_EVERY` seconds (a lease lost and regained unnoticed, while the store was too busy to say who
held it, leaves the other engine's rows there).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store import Rollup

REWRITE_EVERY = 300.0
"""Seconds between two writes of every row and rollup, changed or not."""


@dataclass(frozen=True, slots=True)
class StatusBatch:
    """The rows and rollups of one write: those whose content differs from what was last written."""

    snapshots: tuple[EndpointSnapshot, ...]
    rollups: tuple[Rollup, ...]


class StatusRows:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._rows: dict[str, EndpointSnapshot] = {}
        self._rollups: dict[str, Rollup] = {}
        self._clock = clock
        self._reset_at = clock()
        self.pruned = False
        """Rows of endpoints this engine does not have were deleted since it started leading."""

    def reset(self) -> None:
        """Write everything again next time (the store's rows may be someone else's now)."""
        self._rows.clear()
        self._rollups.clear()
        self._reset_at = self._clock()
        self.pruned = False

    def pending(self, states: Iterable[EndpointState]) -> StatusBatch:
        if self._clock() - self._reset_at >= REWRITE_EVERY:
            self.reset()
        snapshots: list[EndpointSnapshot] = []
        rollups: list[Rollup] = []
        rows, rolled = self._rows, self._rollups
        for state in states:
            snapshot = state.snapshot()
            last = rows.get(state.name)
            # A snapshot is the same object until something changed; rebuilt, it may still be equal.
            if snapshot is not last:
                # Another probe since is another row: most rows, and no comparison field by field.
                if last is not None and snapshot.probes == last.probes and snapshot == last:
                    rows[state.name] = snapshot
                else:
                    snapshots.append(snapshot)
            rollup = state.rollup()
            if rollup is not None:
                written = rolled.get(state.name)
                if rollup is not written and rollup != written:  # the same object: nothing changed
                    rollups.append(rollup)
        return StatusBatch(tuple(snapshots), tuple(rollups))

    def written(self, batch: StatusBatch, gone: Iterable[str] = ()) -> None:
        """`batch` is in the store (and the rows of `gone` are not)."""
        for snapshot in batch.snapshots:
            self._rows[snapshot.name] = snapshot
        for rollup in batch.rollups:
            self._rollups[rollup.endpoint] = rollup
        for name in gone:
            self._rows.pop(name, None)
            self._rollups.pop(name, None)
