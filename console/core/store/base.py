"""The store's connection: one SQLite file shared by several processes, opened safely.

Several processes may share one file (a headless `watch` and a few TUIs), so the store runs in WAL
mode with a busy timeout and takes the write lock up front (`BEGIN IMMEDIATE`). Calls are blocking
and short; async callers run them in a worker thread. Each thread gets its own connection.

Opening takes no lock unless the schema needs migrating, so reading never waits for a writer. A
read-only store (`read_only=True`: `alerts list`, `audit`...) opens the file with SQLite's `mode=ro`,
never creates or migrates it, and refuses a missing file or another schema version. Every SQLite
failure that is about the file rather than the code (missing, locked, corrupt, not writable, disk
full) is raised as a `StoreError` naming the file and the problem in one line.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_console.core.store import schema
from mlops_console.core.store.errors import StoreError, missing_store, translate
from mlops_console.core.store.sqlite_utils_import import import_sqlite_utils

if TYPE_CHECKING:
    import sqlite_utils

DEFAULT_LOCK_TIMEOUT = 10.0
"""Seconds a call waits for another process's write lock before it fails as `locked`."""


def now() -> float:
    return time.time()


def insert_row(db: sqlite_utils.Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row (inside a write transaction); returns its id."""
    columns = ", ".join(row)
    marks = ", ".join("?" * len(row))
    cursor = db.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(row.values()))
    assert cursor.lastrowid is not None
    return cursor.lastrowid


class StoreBase:
    """Connections, transactions and migrations of one SQLite file; the tables' modules build on it.

    `read_only`: open with `mode=ro`, lazily (on the first read), never create or migrate. Otherwise
    the file is created (mode 0600) when missing, unless `create=False`, and migrated. `lock_timeout`:
    seconds to wait for another process's lock.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        read_only: bool = False,
        create: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self._local = threading.local()
        if read_only:
            return  # nothing touches the file until something reads it (`status` never does)
        if not self._file_exists():
            if not create:
                raise missing_store(self.path)
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Created 0600 up front so alert texts and the audit trail are never world-readable.
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            except OSError as exc:
                raise StoreError(self.path, f"cannot create it: {exc.strerror}", "readonly") from exc
        self._migrate()

    # -- connections ---------------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._errors():
                conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            if not self._file_exists():
                raise missing_store(self.path)
            # mode=ro: SQLite itself refuses to write, and never creates the file.
            target, uri = self.path.absolute().as_uri() + "?mode=ro", True
        else:
            target, uri = str(self.path), False
        conn = sqlite3.connect(
            target, timeout=self.lock_timeout, isolation_level=None, check_same_thread=False, uri=uri
        )
        try:
            conn.row_factory = sqlite3.Row
            if not self.read_only:
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.lock_timeout * 1000)}")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            if self.read_only:
                self._check_schema(conn, upgrade=False)
        except BaseException:
            conn.close()
            raise
        return conn

    def _file_exists(self) -> bool:
        try:
            if self.path.is_dir():
                raise StoreError(self.path, "is a directory, not a file", "unavailable")
            return self.path.exists()
        except OSError as exc:
            raise StoreError(self.path, f"cannot reach it: {exc.strerror}", "unavailable") from exc

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Raise SQLite errors about the file as one-line `StoreError`s; leave the others alone."""
        try:
            yield
        except StoreError:
            raise
        except sqlite3.Error as exc:
            translated = translate(
                exc,
                self.path,
                read_only=self.read_only,
                lock_timeout=self.lock_timeout,
                file_exists=self._file_exists,
            )
            if translated is None:
                raise
            # Kept for callers that look at the SQLite code (e.g. retry only when SQLITE_BUSY).
            translated.sqlite_errorcode = exc.sqlite_errorcode
            translated.sqlite_errorname = exc.sqlite_errorname
            raise translated from exc

    @property
    def db(self) -> sqlite_utils.Database:
        """A sqlite-utils view of this thread's connection."""
        db: sqlite_utils.Database | None = getattr(self._local, "db", None)
        if db is None:
            db = import_sqlite_utils().Database(self._conn())
            self._local.db = db
        return db

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction, taking the lock at BEGIN so concurrent writers queue, not deadlock."""
        with self._errors():
            conn = self._conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full, I/O error)
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def check_writable(self) -> None:
        """Take the write lock and let it go: a `StoreError` now rather than at the first alert."""
        with self.write():
            # A no-op write: BEGIN alone succeeds on a read-only file.
            self._conn().execute("DELETE FROM lease WHERE 0")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.db = None

    def _check_schema(self, conn: sqlite3.Connection, *, upgrade: bool) -> int:
        """The schema version, if this code can use it (after migrating, when `upgrade`)."""
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        latest = len(schema.MIGRATIONS)
        if version > latest:
            raise StoreError(
                self.path,
                f"schema version {version} is newer than this mlops-console knows ({latest}); "
                "upgrade mlops-console",
                "schema",
            )
        if version == 0:
            tables = conn.execute("SELECT name FROM sqlite_master WHERE type='table' LIMIT 1").fetchall()
            if tables:
                # Never add our tables to someone else's database (store.path pointing at mlflow.db).
                raise StoreError(
                    self.path,
                    f"not an mlops-console store (it holds other tables, e.g. {tables[0][0]!r})",
                    "corrupt",
                )
            if not upgrade:
                raise StoreError(
                    self.path,
                    "holds no alerts yet: it was never initialised (`mlops-console watch` or the console "
                    "does that)",
                    "schema",
                )
        elif version < latest and not upgrade:
            raise StoreError(
                self.path,
                f"schema version {version} is older than this mlops-console's ({latest}); run "
                "`mlops-console watch` or the console once to upgrade it",
                "schema",
            )
        return version

    def _migrate(self) -> None:
        with self._errors():
            conn = self._conn()
            if self._check_schema(conn, upgrade=True) == len(schema.MIGRATIONS):
                return  # the usual case: no write lock taken, so opening never waits for a writer
        with self.write():
            version = self._check_schema(conn, upgrade=True)  # another process may have migrated
            for number, script in enumerate(schema.MIGRATIONS[version:], start=version + 1):
                for statement in schema.statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Rows of any read, as dicts (for the tables' modules, scripts and tests)."""
        with self._errors():
            return [dict(row) for row in self._conn().execute(sql, params)]
