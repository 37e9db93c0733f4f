"""Tailing one inference log from a position: whole lines, at most a few MB per read, following
rotation by inode; what was read goes to the caller, the position stays here until it is saved."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable

from mlops_console.core.quality.offsets import LogOffset, TailError
from mlops_console.core.quality.records import Record
from mlops_console.core.quality.report import open_tail
from mlops_console.core.quality.seek import offset_at
from mlops_console.core.quality.sqlite_tail import SqliteTail

log = logging.getLogger("mlops_console.quality")

READS_PER_STEP = 16
"""Reads (of at most 4 MB each) per step: a large backlog is caught up over several steps."""
RECENT_EVENTS = 5


class LogReader:
    """One log and where its reading stands. Used by one thread at a time."""

    def __init__(self, endpoint: str, path: str, format: str, table: str | None) -> None:
        self.endpoint = endpoint
        self.path = path
        self.tail = open_tail(path, format, table)
        self.offset: LogOffset | None = None
        self.malformed = 0
        self.events: deque[str] = deque(maxlen=RECENT_EVENTS)
        self.error: str | None = None

    def offset_at(self, start: float) -> LogOffset:
        """The position of the first row at or after `start` (epoch seconds)."""
        if isinstance(self.tail, SqliteTail):
            return self.tail.offset_at(start)
        return offset_at(self.tail, start)

    def follow(self, first: Callable[[], LogOffset], add: Callable[[Iterable[Record]], None]) -> None:
        """Read what the log gained (from `first()` on the first call) into `add`. A log that cannot be
        read is reported once per distinct error and kept in `error` until a read succeeds."""
        try:
            if self.offset is None:
                self.offset = first()
            self._read(add)
            self.error = None
        except TailError as exc:
            if self.error != str(exc):
                log.warning("%s: inference log: %s", self.endpoint, exc, extra={"event": "quality_error"})
            self.error = str(exc)

    def _read(self, add: Callable[[Iterable[Record]], None]) -> None:
        assert self.offset is not None
        for _ in range(READS_PER_STEP):
            batch = self.tail.read(self.offset)
            add(batch.records)
            self.offset = batch.offset
            self.malformed += batch.malformed
            for event in batch.events:
                if not event.startswith("rotated:"):  # following rotation is routine
                    self.events.append(event)
                    log.warning("%s: inference log %s", self.endpoint, event, extra={"event": "quality_log"})
            if not batch.more:
                return
