"""Where a reader stopped in a log, and what one read returned: plain values a caller persists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from mlops_console.core.quality.records import Record


class TailError(Exception):
    """The log cannot be read (permissions, not a database, no such table); `str()` is one line."""


@dataclass(frozen=True, slots=True)
class LogOffset:
    """A position in a log that survives restarts, rotation and truncation.

    The file is identified by device and inode (rotation renames it; the reader finds it under its new
    name) and by its first bytes (an inode reused by a new file does not pass for the old one).
    """

    device: int = 0
    inode: int = 0
    position: int = 0
    """Bytes consumed (whole lines only) in a line log; the last rowid read in an SQLite table."""
    head: str = ""
    """Hex of the file's first bytes (up to 64), once read."""
    header: tuple[str, ...] = ()
    """CSV column names, from the file's first line."""
    skipping: bool = False
    """Inside a line too long to be a record: the rest of it is skipped."""

    @property
    def started(self) -> bool:
        return self.inode != 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "inode": self.inode,
            "position": self.position,
            "head": self.head,
            "header": list(self.header),
            "skipping": self.skipping,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LogOffset:
        """Raises ValueError on anything that is not an offset this module wrote."""
        if not isinstance(data, dict):
            raise ValueError("an offset is a JSON object")
        numbers = [data.get(key, 0) for key in ("device", "inode", "position")]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in numbers):
            raise ValueError("offset device, inode and position are non-negative integers")
        head, header = data.get("head", ""), data.get("header", [])
        if (
            not isinstance(head, str)
            or not isinstance(header, list)
            or not all(isinstance(h, str) for h in header)
        ):
            raise ValueError("offset head is a string and header a list of strings")
        return cls(numbers[0], numbers[1], numbers[2], head, tuple(header), bool(data.get("skipping", False)))


@dataclass(frozen=True, slots=True)
class TailBatch:
    """What one read returned. Records are in log order; `offset` is where the next read starts."""

    records: tuple[Record, ...]
    offset: LogOffset
    malformed: int = 0
    """Lines or rows that were not records (skipped, never fatal)."""
    events: tuple[str, ...] = ()
    """Rotation followed, truncation or replacement detected, data lost: one sentence each."""
    more: bool = False
    """The read stopped at its size budget: more is waiting, read again at once."""
    bytes_read: int = 0


class Tail(Protocol):
    """An incremental reader of one log. `read` blocks on file I/O: run it off any event loop."""

    def read(self, offset: LogOffset | None = None) -> TailBatch: ...
