"""Follow an inference log kept in an SQLite table, by rowid.

The table holds the flattened columns (see `records`) and must have rowids (no `WITHOUT ROWID`): rows
are read in rowid order after the last one read. A table emptied or recreated (its largest rowid fell
below the offset), or a database file replaced by another (a new inode), is read again from its start.
The database is opened read-only and only for the length of one read, so writers never wait for us.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from mlops_console.core.quality.offsets import LogOffset, TailBatch, TailError
from mlops_console.core.quality.records import InferenceRecord, Record, parse_time, record_from_flat

READ_ROWS = 5000


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SqliteTail:
    """An incremental reader of `table` in the SQLite database at `path`."""

    def __init__(self, path: str | os.PathLike[str], table: str, *, read_rows: int = READ_ROWS) -> None:
        if not table:
            raise ValueError("an SQLite inference log needs a table name")
        self.path = Path(path)
        self.table = table
        self.read_rows = max(1, read_rows)

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(self.path.resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=5.0)
            conn.row_factory = sqlite3.Row
            return conn
        except sqlite3.Error as exc:
            raise TailError(f"{self.path}: cannot open: {exc}") from None

    def _query(self, conn: sqlite3.Connection, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise TailError(f"{self.path}: table {self.table!r}: {exc}") from None

    def read(self, offset: LogOffset | None = None) -> TailBatch:
        offset = offset or LogOffset()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return TailBatch((), offset)
        except OSError as exc:
            raise TailError(f"{self.path}: cannot read: {exc.strerror}") from None
        events: list[str] = []
        if offset.started and (st.st_dev, st.st_ino) != (offset.device, offset.inode):
            events.append(f"replaced: {self.path.name} is another database now; reading it from the start")
            offset = LogOffset()
        position = offset.position
        conn = self._connect()
        try:
            table = quote_identifier(self.table)
            newest = self._query(conn, f"SELECT max(rowid) FROM {table}")[0][0] or 0
            if newest < position:
                events.append(
                    f"truncated: table {self.table} was emptied or recreated; reading it from the start"
                )
                position = 0
            rows = self._query(
                conn,
                f"SELECT rowid AS _tail_rowid, * FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (position, self.read_rows),
            )
        finally:
            conn.close()
        records: list[Record] = []
        malformed = 0
        for row in rows:
            position = row["_tail_rowid"]
            record = record_from_flat(dict(row), guess_types=False)
            if record is None:
                malformed += 1
            else:
                records.append(record)
        new_offset = LogOffset(device=st.st_dev, inode=st.st_ino, position=position)
        return TailBatch(
            tuple(records), new_offset, malformed, tuple(events), more=len(rows) == self.read_rows
        )

    def last_record(self) -> InferenceRecord | None:
        """The newest scored row (actual outcomes are skipped)."""
        conn = self._connect()
        try:
            table = quote_identifier(self.table)
            before = None
            while True:
                where = "WHERE rowid < ?" if before is not None else ""
                rows = self._query(
                    conn,
                    f"SELECT rowid AS _tail_rowid, * FROM {table} {where} ORDER BY rowid DESC LIMIT 100",
                    (before,) if before is not None else (),
                )
                if not rows:
                    return None
                for row in rows:
                    record = record_from_flat(dict(row), guess_types=False)
                    if isinstance(record, InferenceRecord):
                        return record
                before = rows[-1]["_tail_rowid"]
        finally:
            conn.close()

    def offset_at(self, at: float) -> LogOffset:
        """An offset just before the first row whose time is at or after `at` (rows in time order)."""
        st = self.path.stat()
        conn = self._connect()
        try:
            table = quote_identifier(self.table)
            low = 0
            high = self._query(conn, f"SELECT max(rowid) FROM {table}")[0][0] or 0
            # Binary search over rowids: rowids may have gaps, so probe the first row at or after `mid`.
            while low < high:
                mid = (low + high) // 2
                found = self._query(
                    conn, f"SELECT rowid, time FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT 1", (mid,)
                )
                if not found:
                    high = mid
                    continue
                rowid, stamp = found[0][0], parse_time(found[0][1])
                if stamp is not None and stamp < at:
                    low = rowid
                else:
                    high = mid
        finally:
            conn.close()
        return LogOffset(device=st.st_dev, inode=st.st_ino, position=low)
