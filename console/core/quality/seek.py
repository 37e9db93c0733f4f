"""Find a time in a line log without reading it all: binary search over byte positions.

Logs are appended in time order (a few milliseconds of disorder between writer threads does not
matter at the scale of a drift window), so the first line at or after a time can be found by probing
a few dozen lines, across the rotated files too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mlops_console.core.quality.offsets import LogOffset
from mlops_console.core.quality.records import InferenceRecord, Record, parse_json_line
from mlops_console.core.quality.tail import (
    HEAD_BYTES,
    MAX_LINE_BYTES,
    LineTail,
    _csv_cells,
    _csv_record,
    first_record,
)

BLOCK = MAX_LINE_BYTES
"""Bytes read at a time: any line a record may be fits in one block."""
SPAN = 64 * 1024
"""The binary search stops when the first record is known to lie within this many bytes."""


def _parse(line: bytes, fmt: str, header: tuple[str, ...]) -> Record | None:
    return _csv_record(line, header) if fmt == "csv" else parse_json_line(line)


def _header(fd: int, fmt: str) -> tuple[tuple[str, ...], int]:
    """CSV column names and where the data starts (after the header line); nothing for JSON lines."""
    if fmt != "csv":
        return (), 0
    first = os.pread(fd, BLOCK, 0)
    newline = first.find(b"\n")
    if newline < 0:
        return (), 0
    return _csv_cells(first[:newline]), newline + 1


def _lines(fd: int, position: int) -> Iterator[tuple[int, bytes]]:
    """(start, line) for each whole line from `position`, which must be a line start."""
    at = position
    while True:
        block = os.pread(fd, BLOCK, at)
        cursor = 0
        while True:
            newline = block.find(b"\n", cursor)
            if newline < 0:
                break
            yield at + cursor, block[cursor:newline]
            cursor = newline + 1
        if cursor == 0:
            return  # the end of the file, or a line too long to be a record
        at += cursor


def _first_record(
    fd: int, position: int, fmt: str, header: tuple[str, ...], *, aligned: bool
) -> tuple[int, Record] | None:
    """The first record on a line starting at `position` (when `aligned`) or after it."""
    if not aligned:
        block = os.pread(fd, BLOCK, position)
        newline = block.find(b"\n")
        if newline < 0:
            return None
        position += newline + 1
    for start, line in _lines(fd, position):
        record = _parse(line, fmt, header)
        if record is not None:
            return start, record
    return None


def _search(path: Path, fmt: str, at: float) -> LogOffset:
    with path.open("rb") as handle:
        fd = handle.fileno()
        st = os.fstat(fd)
        header, data_start = _header(fd, fmt)
        low, high = data_start, st.st_size
        while high - low > SPAN:  # invariant: the first record at or after `at` starts after `low`
            mid = (low + high) // 2
            found = _first_record(fd, mid, fmt, header, aligned=False)
            if found is not None and found[0] < high and found[1].time < at:
                low = found[0]
            else:
                high = mid
        position = st.st_size
        for start, line in _lines(fd, low):
            record = _parse(line, fmt, header)
            if record is not None and record.time >= at:
                position = start
                break
        head = os.pread(fd, HEAD_BYTES, 0).hex()
    if position <= data_start:
        return LogOffset(st.st_dev, st.st_ino, 0, head)
    return LogOffset(st.st_dev, st.st_ino, position, head, header)


def offset_at(tail: LineTail, at: float) -> LogOffset:
    """An offset at the first record at or after `at`, in the rotated file that holds it if needed."""
    files = tail.chain()
    if not files:
        return LogOffset()
    chosen = files[0]
    for path in reversed(files):
        record = first_record(path, tail.fmt)
        if record is not None and record.time <= at:
            chosen = path
            break
    return _search(chosen, tail.fmt, at)


def offset_at_start(tail: LineTail) -> LogOffset:
    """An offset at the very first record still on disk (the oldest rotated file's start)."""
    files = tail.chain()
    if not files:
        return LogOffset()
    st = files[0].stat()
    return LogOffset(st.st_dev, st.st_ino, 0)


def last_record(tail: LineTail) -> InferenceRecord | None:
    """The newest scored row (from the live file's last block, or the newest rotated one's)."""
    for path in reversed(tail.chain()):
        with path.open("rb") as handle:
            fd = handle.fileno()
            header, _ = _header(fd, tail.fmt)
            size = os.fstat(fd).st_size
            block = os.pread(fd, BLOCK, max(0, size - BLOCK))
        for line in reversed(block.split(b"\n")):
            record = _parse(line, tail.fmt, header) if line.strip() else None
            if isinstance(record, InferenceRecord):
                return record
    return None
