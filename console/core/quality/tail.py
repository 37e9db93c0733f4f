"""Follow a JSON-lines or CSV inference log incrementally, through rotation and truncation.

Each `read` starts from an offset and consumes whole lines only, at most `read_bytes` per call, so
memory is bounded however large the log grows and a half-written last line is read once complete.

Rotation (the writer renames PATH to PATH.1, PATH.1 to PATH.2, ... and starts a new PATH): the offset
names the file by device and inode, so the reader finds it under its new name, reads it to its end,
then continues with the next newer file (PATH.k-1, ..., PATH) from its start. Nothing is lost and
nothing is read twice, provided the rotated file still exists when the reader comes back. If it is
gone, the batch says so. Truncation in place (the file shrank below the offset, or its first bytes
changed) restarts from the beginning of the file, and the batch says that too.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from mlops_console.core.quality.offsets import LogOffset, TailBatch, TailError
from mlops_console.core.quality.records import Record, parse_json_line, record_from_flat

HEAD_BYTES = 64
MAX_LINE_BYTES = 1 << 20
"""A longer line is not a record (it is skipped and counted as malformed)."""
READ_BYTES = 4 << 20
"""Bytes read per call at most (at least MAX_LINE_BYTES, so any acceptable line fits)."""
FORMATS = ("jsonl", "csv")


@dataclass
class _Progress:
    records: list[Record] = field(default_factory=list)
    malformed: int = 0
    events: list[str] = field(default_factory=list)
    bytes_read: int = 0


def _same_file(st: os.stat_result, offset: LogOffset) -> bool:
    return (st.st_dev, st.st_ino) == (offset.device, offset.inode)


def _fresh(st: os.stat_result) -> LogOffset:
    return LogOffset(device=st.st_dev, inode=st.st_ino)


class LineTail:
    """An incremental reader of a JSON-lines (`jsonl`) or CSV log at `path`."""

    def __init__(self, path: str | os.PathLike[str], fmt: str = "jsonl", *, read_bytes: int = READ_BYTES):
        if fmt not in FORMATS:
            raise ValueError(f"unknown log format {fmt!r} (expected one of {', '.join(FORMATS)})")
        self.path = Path(path)
        self.fmt = fmt
        self.read_bytes = max(read_bytes, MAX_LINE_BYTES)
        self._rotated = re.compile(re.escape(self.path.name) + r"\.(\d+)")

    # -- the public read --------------------------------------------------------------------------------
    def read(self, offset: LogOffset | None = None) -> TailBatch:
        offset = offset or LogOffset()
        progress = _Progress()
        budget = self.read_bytes
        for _ in range(64):  # each pass reads one file; a long chain of rotated files takes several
            live = self._stat(self.path)
            if not offset.started:
                if live is None:
                    break
                offset = _fresh(live)
            if live is not None and _same_file(live, offset):
                offset, budget = self._read_file(self.path, offset, budget, progress, rotated=False)
                break
            where = self._locate(offset)
            if where is None:
                if live is None:
                    break
                progress.events.append(
                    f"lost: the file read up to byte {offset.position} was removed before it was "
                    f"read to its end; continuing with the current {self.path.name}"
                )
                offset = _fresh(live)
                continue
            offset, budget = self._read_file(where, offset, budget, progress, rotated=True)
            if budget <= 0:
                break
            successor = self._successor(where)
            if successor is None:  # the writer renamed and has not created the next file yet
                break
            st, name = successor
            progress.events.append(f"rotated: finished {where.name}, continuing with {name}")
            offset = _fresh(st)
        return TailBatch(
            records=tuple(progress.records),
            offset=offset,
            malformed=progress.malformed,
            events=tuple(progress.events),
            more=budget <= 0,
            bytes_read=progress.bytes_read,
        )

    # -- files ------------------------------------------------------------------------------------------
    @staticmethod
    def _stat(path: Path) -> os.stat_result | None:
        try:
            return path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TailError(f"{path}: cannot read: {exc.strerror}") from None

    def rotated_files(self) -> list[tuple[int, Path]]:
        """Numbered rotations beside the log, (number, path), newest (lowest number) first."""
        try:
            names = os.listdir(self.path.parent)
        except OSError as exc:
            raise TailError(f"{self.path.parent}: cannot list: {exc.strerror}") from None
        found = []
        for name in names:
            match = self._rotated.fullmatch(name)
            if match:
                found.append((int(match.group(1)), self.path.parent / name))
        return sorted(found)

    def chain(self) -> list[Path]:
        """Every readable file of the log, oldest first: PATH.N, ..., PATH.1, PATH."""
        files = [path for _, path in reversed(self.rotated_files())]
        return [*files, self.path] if self.path.exists() else files

    def _locate(self, offset: LogOffset) -> Path | None:
        """Where the file the offset names lives now (rotation renames it), None when it is gone."""
        try:
            entries = list(os.scandir(self.path.parent))
        except OSError as exc:
            raise TailError(f"{self.path.parent}: cannot list: {exc.strerror}") from None
        prefix = self.path.name
        for entry in entries:
            if entry.name.startswith(prefix) and entry.inode() == offset.inode:
                try:
                    if entry.stat().st_dev == offset.device:
                        return Path(entry.path)
                except OSError:
                    continue
        return None

    def _successor(self, where: Path) -> tuple[os.stat_result, str] | None:
        """The file written after `where`: PATH.k-1 after PATH.k, PATH after PATH.1 or any other name."""
        match = self._rotated.fullmatch(where.name)
        number = int(match.group(1)) if match else 1
        following = self.path if number <= 1 else self.path.with_name(f"{self.path.name}.{number - 1}")
        st = self._stat(following)
        return (st, following.name) if st is not None else None

    # -- one file ---------------------------------------------------------------------------------------
    def _read_file(
        self, path: Path, offset: LogOffset, budget: int, progress: _Progress, *, rotated: bool
    ) -> tuple[LogOffset, int]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return offset, budget  # renamed between the directory scan and the open: next read finds it
        except OSError as exc:
            raise TailError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if not _same_file(st, offset):
                return offset, budget  # another file took the name meanwhile: next read sorts it out
            head = os.pread(fd, HEAD_BYTES, 0)
            if st.st_size < offset.position or not head.hex().startswith(offset.head):
                progress.events.append(
                    f"truncated: {path.name} shrank or was rewritten below byte {offset.position}; "
                    "reading it from the start"
                )
                offset = _fresh(st)
            if len(offset.head) < 2 * len(head):
                offset = replace(offset, head=head.hex())
            if offset.position == 0 and self.fmt == "csv":
                offset = replace(offset, header=())
            while budget > 0 and offset.position < st.st_size:
                want = min(budget, st.st_size - offset.position, self.read_bytes)
                data = os.pread(fd, want, offset.position)
                if not data:
                    break
                budget -= len(data)
                progress.bytes_read += len(data)
                at_end = offset.position + len(data) >= st.st_size
                before = offset.position
                offset = self._consume(data, offset, progress, final=rotated and at_end)
                if offset.position == before:  # only part of a line: wait for the rest
                    if not at_end:
                        budget = 0  # the budget cut the line short: the caller reads again at once
                    break
        finally:
            os.close(fd)
        return offset, budget

    def _consume(self, data: bytes, offset: LogOffset, progress: _Progress, *, final: bool) -> LogOffset:
        """Parse the whole lines in `data` (read at `offset.position`); return the advanced offset."""
        position, skipping, header = offset.position, offset.skipping, offset.header
        start = 0
        if skipping:
            newline = data.find(b"\n")
            if newline < 0:
                return replace(offset, position=position + len(data))
            start, skipping = newline + 1, False
        end = data.rfind(b"\n") + 1
        if end <= start:  # no complete line in what was read
            if len(data) - start >= MAX_LINE_BYTES:
                progress.malformed += 1
                return replace(offset, position=position + len(data), skipping=True)
            if not final:
                return replace(offset, position=position + start, skipping=False)
            end = len(data)  # a rotated file's unterminated last line will never be finished
        for line in data[start:end].splitlines():
            if not line.strip():
                continue
            if self.fmt == "csv":
                if not header:
                    header = _csv_cells(line)
                    continue
                record = _csv_record(line, header)
            else:
                record = parse_json_line(line)
            if record is None:
                progress.malformed += 1
            else:
                progress.records.append(record)
        return replace(offset, position=position + end, skipping=False, header=header)


def _csv_cells(line: bytes) -> tuple[str, ...]:
    text = line.decode("utf-8", errors="replace")
    return tuple(next(csv.reader((text,)), []))


def _csv_record(line: bytes, header: tuple[str, ...]) -> Record | None:
    cells = _csv_cells(line)
    if len(cells) != len(header):
        return None
    return record_from_flat(dict(zip(header, cells, strict=True)), guess_types=True)


def first_record(path: Path, fmt: str, *, limit: int = 64 * 1024) -> Record | None:
    """The first record of a line log, from its first `limit` bytes (None if none is there)."""
    try:
        with path.open("rb") as handle:
            lines = handle.read(limit).split(b"\n")[:-1]
    except OSError:
        return None
    if fmt == "csv":
        header = _csv_cells(lines[0]) if lines else ()
        return next((r for r in (_csv_record(line, header) for line in lines[1:]) if r), None)
    return next((r for r in (parse_json_line(line) for line in lines) if r), None)
