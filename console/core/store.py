"""The SQLite store: alerts, their events, the notification outbox, the audit trail, the engine lease.

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
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_console.core.limits import check_silence, check_text

if TYPE_CHECKING:
    import sqlite_utils

ALERT_STATES = ("firing", "acknowledged", "resolved")
DEFAULT_LOCK_TIMEOUT = 10.0
"""Seconds a call waits for another process's write lock before it fails as `locked`."""

# Each migration runs once, in order, inside one transaction; PRAGMA user_version remembers progress.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        rule TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        model TEXT,
        version TEXT,
        severity TEXT NOT NULL,
        state TEXT NOT NULL,
        summary TEXT NOT NULL,
        value REAL,
        threshold REAL,
        started_at REAL NOT NULL,
        resolved_at REAL,
        acked_by TEXT,
        acked_at REAL,
        ack_note TEXT,
        silenced_until REAL,
        silenced_by TEXT,
        flapping INTEGER NOT NULL DEFAULT 0,
        last_notified_at REAL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX alerts_state_started ON alerts(state, started_at DESC);
    CREATE INDEX alerts_started ON alerts(started_at DESC);
    CREATE INDEX alerts_fingerprint ON alerts(fingerprint, started_at DESC);
    CREATE INDEX alerts_endpoint ON alerts(endpoint, started_at DESC);

    CREATE TABLE alert_events (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        at REAL NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        note TEXT,
        data TEXT
    );
    CREATE INDEX alert_events_alert ON alert_events(alert_id, at);

    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        alert_id INTEGER REFERENCES alerts(id),
        kind TEXT NOT NULL,
        channel TEXT NOT NULL,
        target TEXT NOT NULL,
        severity TEXT NOT NULL,
        title TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        created_at REAL NOT NULL,
        sent_at REAL,
        last_error TEXT
    );
    CREATE INDEX notifications_due ON notifications(status, next_attempt_at);
    CREATE INDEX notifications_alert ON notifications(alert_id);

    CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        notification_id INTEGER NOT NULL REFERENCES notifications(id),
        at REAL NOT NULL,
        ok INTEGER NOT NULL,
        duration_ms REAL,
        error TEXT
    );
    CREATE INDEX deliveries_notification ON deliveries(notification_id);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT,
        alias TEXT,
        from_version TEXT,
        to_version TEXT,
        reason TEXT,
        result TEXT NOT NULL,
        detail TEXT,
        alert_id INTEGER,
        endpoint TEXT
    );
    CREATE INDEX audit_at ON audit(at DESC);
    CREATE INDEX audit_model ON audit(model, alias, at DESC);

    CREATE TABLE lease (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        pid INTEGER,
        host TEXT,
        acquired_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );

    CREATE TABLE endpoint_status (
        name TEXT PRIMARY KEY,
        updated_at REAL NOT NULL,
        data TEXT NOT NULL
    );

    CREATE TABLE rollups (
        endpoint TEXT NOT NULL,
        minute INTEGER NOT NULL,
        probes INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        p50 REAL, p95 REAL, p99 REAL,
        rps REAL,
        error_ratio REAL,
        PRIMARY KEY (endpoint, minute)
    );
    """,
    # 2: the lease holder's own health (running, degraded, stalled...), for followers and `status`.
    """
    CREATE TABLE engine_health (
        owner TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT,
        updated_at REAL NOT NULL
    );
    """,
    # 3: a notification being sent is marked first (when, by whom), so a watcher that dies between the
    # delivery and its record leaves a trace; `interrupted` counts sends cut off that way.
    """
    ALTER TABLE notifications ADD COLUMN sending_at REAL;
    ALTER TABLE notifications ADD COLUMN sending_by TEXT;
    ALTER TABLE notifications ADD COLUMN interrupted INTEGER NOT NULL DEFAULT 0;
    """,
]


def now() -> float:
    return time.time()


class StoreError(sqlite3.OperationalError):
    """The store file cannot be used; the message names the file and the problem in one line.

    `kind` is `missing`, `locked`, `corrupt`, `readonly`, `schema` or `unavailable` (I/O error, disk
    full, cannot open). A subclass of `sqlite3.OperationalError`, so code that already handles SQLite
    errors keeps handling these.
    """

    def __init__(self, path: Path, problem: str, kind: str) -> None:
        super().__init__(f"store {path}: {problem}")
        self.path, self.problem, self.kind = path, problem, kind


# Primary SQLite result codes (the low byte of `sqlite_errorcode`).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


class Store:
    """Thread-safe facade over one SQLite file.

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
                raise self._missing()
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
        conn = getattr(self._local, "conn", None)
        if conn is None:
            with self._errors():
                conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        if self.read_only:
            if not self._file_exists():
                raise self._missing()
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

    def _missing(self) -> StoreError:
        if not self.path.parent.is_dir():
            where = f"neither it nor its directory {self.path.parent} exists"
        else:
            where = "it does not exist"
        return StoreError(
            self.path,
            f"{where}; nothing has been recorded there yet (`mlops-console watch` or the console "
            "creates it; check store.path)",
            "missing",
        )

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Raise SQLite errors about the file as one-line `StoreError`s; leave the others alone."""
        try:
            yield
        except StoreError:
            raise
        except sqlite3.Error as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            # Kept for callers that look at the SQLite code (e.g. retry only when SQLITE_BUSY).
            translated.sqlite_errorcode = getattr(exc, "sqlite_errorcode", None)  # type: ignore[attr-defined]
            translated.sqlite_errorname = getattr(exc, "sqlite_errorname", None)  # type: ignore[attr-defined]
            raise translated from exc

    def _translate(self, exc: sqlite3.Error) -> StoreError | None:
        code = getattr(exc, "sqlite_errorcode", None)
        name = getattr(exc, "sqlite_errorname", "")
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        if primary in (_BUSY, _LOCKED):
            return StoreError(
                self.path, f"locked by another process (waited {self.lock_timeout:g} s)", "locked"
            )
        if primary == _READONLY:
            if self.read_only and name != "SQLITE_READONLY":
                # A WAL file can only be read where SQLite may create its -shm file beside it.
                problem = (
                    "cannot be read: its directory is not writable and SQLite needs to create "
                    f"{self.path.name}-shm there"
                )
            elif self.read_only:
                problem = "opened read-only, cannot write"
            elif name == "SQLITE_READONLY_DIRECTORY":
                problem = "not writable: its directory is read-only"
            else:
                problem = "not writable: the file (or its directory) is read-only"
            return StoreError(self.path, problem, "readonly")
        if primary == _NOTADB:
            return StoreError(self.path, f"not an SQLite database ({text})", "corrupt")
        if primary == _CORRUPT:
            return StoreError(self.path, f"corrupt ({text})", "corrupt")
        if primary == _FULL:
            return StoreError(self.path, "cannot write: the disk is full", "unavailable")
        if primary == _CANTOPEN:
            if not self._file_exists():
                return self._missing()
            return StoreError(self.path, f"cannot open it ({text}): check its permissions", "unavailable")
        if primary == _IOERR:
            return StoreError(self.path, f"I/O error ({text})", "unavailable")
        if text.startswith(("no such table", "no such column")):
            return StoreError(self.path, f"not an mlops-console store ({text})", "corrupt")
        return None

    @property
    def db(self) -> sqlite_utils.Database:
        """A sqlite-utils view of this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            # Imported on first use: sqlite-utils pulls in pandas when present (~0.3 s of start-up).
            import sqlite_utils

            db = sqlite_utils.Database(self._conn())
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
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        latest = len(MIGRATIONS)
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
            if self._check_schema(conn, upgrade=True) == len(MIGRATIONS):
                return  # the usual case: no write lock taken, so opening never waits for a writer
        with self.write():
            version = self._check_schema(conn, upgrade=True)  # another process may have migrated
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._errors():
            return [dict(row) for row in self._conn().execute(sql, params)]

    # -- alerts --------------------------------------------------------------------------------------
    def open_alert(
        self,
        alert: dict[str, Any],
        notifications: Callable[[int], list[dict[str, Any]]] | list[dict[str, Any]],
        *,
        events: Sequence[str] = (),
        adopt_open: bool = False,
    ) -> int:
        """Insert a firing alert, its `fired` event and its pending notifications in one transaction.

        `notifications` may be a function of the new alert's id, so messages can name the alert.
        `events`: further event kinds to record with it (e.g. `flapping`). `adopt_open`: if an alert
        with the same fingerprint is already open (another engine recorded it), return its id and
        write nothing, so one incident never becomes two alerts.
        """
        at = alert.get("started_at") or now()
        with self.write() as db:
            if adopt_open:
                rows = self.query(
                    "SELECT id FROM alerts WHERE fingerprint=? AND state!='resolved' "
                    "ORDER BY started_at DESC LIMIT 1",
                    [alert["fingerprint"]],
                )
                if rows:
                    return int(rows[0]["id"])
            alert_id = (
                db["alerts"].insert({**alert, "state": "firing", "started_at": at, "updated_at": at}).last_pk
            )
            self._event(db, alert_id, "fired", at=at, data={"value": alert.get("value")})
            for kind in events:
                self._event(db, alert_id, kind, at=at)
            rows = notifications(int(alert_id)) if callable(notifications) else notifications
            self._enqueue(db, alert_id, rows, at)
        return int(alert_id)

    def resolve_alert(
        self,
        alert_id: int,
        notifications: Callable[[], list[dict[str, Any]]] | list[dict[str, Any]],
        note: str | None = None,
        at: float | None = None,
    ) -> None:
        """Resolve the alert and queue its notifications (a list, or a function called inside the
        transaction) in one transaction."""
        at = at or now()
        with self.write() as db:
            db.execute(
                "UPDATE alerts SET state='resolved', resolved_at=?, updated_at=? WHERE id=?",
                [at, at, alert_id],
            )
            self._event(db, alert_id, "resolved", at=at, note=note)
            rows = notifications() if callable(notifications) else notifications
            self._enqueue(db, alert_id, rows, at)

    def acknowledge(self, alert_id: int, by: str, note: str | None = None) -> dict[str, Any]:
        check_text(by, "the acknowledging name")
        check_text(note, "the note")
        at = now()
        with self.write() as db:
            alert = self._get_alert(alert_id)
            if alert["state"] == "resolved":
                raise ValueError(f"alert {alert_id} is already resolved")
            db.execute(
                "UPDATE alerts SET state='acknowledged', acked_by=?, acked_at=?, ack_note=?, updated_at=? "
                "WHERE id=?",
                [by, at, note, at, alert_id],
            )
            self._event(db, alert_id, "acknowledged", at=at, actor=by, note=note)
            self._audit(
                db,
                actor=by,
                action="ack",
                model=alert["model"],
                reason=note,
                result="ok",
                alert_id=alert_id,
                endpoint=alert["endpoint"],
                at=at,
            )
        return self._get_alert(alert_id)

    def silence(self, alert_id: int, seconds: float, by: str, note: str | None = None) -> dict[str, Any]:
        """Silence the alert's fingerprint: this incident and any recurrence until then stay quiet.

        ValueError for a duration that is not positive or longer than 30 days, or overlong text."""
        check_silence(seconds)
        check_text(by, "the silencing name")
        check_text(note, "the note")
        at = now()
        until = at + seconds
        with self.write() as db:
            alert = self._get_alert(alert_id)
            db.execute(
                "UPDATE alerts SET silenced_until=?, silenced_by=?, updated_at=? WHERE id=?",
                [until, by, at, alert_id],
            )
            # Pending deliveries for a silenced alert would page someone who just asked for quiet.
            db.execute(
                "UPDATE notifications SET status='silenced' WHERE alert_id=? AND status='pending'", [alert_id]
            )
            self._event(db, alert_id, "silenced", at=at, actor=by, note=note, data={"until": until})
            self._audit(
                db,
                actor=by,
                action="silence",
                model=alert["model"],
                reason=note,
                result="ok",
                alert_id=alert_id,
                endpoint=alert["endpoint"],
                at=at,
                detail={"until": until, "seconds": seconds},
            )
        return self._get_alert(alert_id)

    def silenced_until(self, fingerprint: str) -> float | None:
        sql = "SELECT max(silenced_until) AS until FROM alerts WHERE fingerprint=?"
        rows = self.query(sql, [fingerprint])
        until = rows[0]["until"] if rows else None
        return until if until and until > now() else None

    def remind(self, alert_id: int, notifications: list[dict[str, Any]]) -> None:
        at = now()
        with self.write() as db:
            self._event(db, alert_id, "reminder", at=at)
            self._enqueue(db, alert_id, notifications, at)

    def add_event(
        self,
        alert_id: int,
        kind: str,
        actor: str | None = None,
        note: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self.write() as db:
            self._event(db, alert_id, kind, actor=actor, note=note, data=data)

    def bulk_events(self, rows: Sequence[tuple[Any, ...]], alerts: Sequence[tuple[Any, ...]] = ()) -> int:
        """Append many alerts and events in one transaction (imports, replays, benchmarks).

        `alerts`: (id, fingerprint, rule, endpoint, model, version, severity, state, summary, value,
        threshold, started_at, resolved_at, updated_at); `rows`: (alert_id, at, kind, actor, note, data
        as a JSON string or None). One executemany per table: ~20x the per-event API's rate.
        """
        with self.write():
            conn = self._conn()
            if alerts:
                conn.executemany(
                    "INSERT INTO alerts (id, fingerprint, rule, endpoint, model, version, severity, state, "
                    "summary, value, threshold, started_at, resolved_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    alerts,
                )
            conn.executemany(
                "INSERT INTO alert_events (alert_id, at, kind, actor, note, data) VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def _get_alert(self, alert_id: int) -> dict[str, Any]:
        rows = self.query("SELECT * FROM alerts WHERE id=?", [alert_id])
        if not rows:
            raise KeyError(alert_id)
        return rows[0]

    def get_alert(self, alert_id: int) -> dict[str, Any]:
        """The alert row with its derived `display_state`; KeyError if there is no such alert."""
        return with_display_state(self._get_alert(alert_id))

    def list_alerts(
        self, state: str = "all", limit: int = 100, endpoint: str | None = None, since: float | None = None
    ) -> list[dict[str, Any]]:
        """Newest first. `state`: firing, acknowledged, resolved, silenced, open (not resolved) or all."""
        where, params = [], []  # type: ignore[var-annotated]
        if state in ALERT_STATES:
            where.append("state=?")
            params.append(state)
        elif state == "open":
            where.append("state!='resolved'")
        elif state == "silenced":
            where.append("state!='resolved' AND silenced_until>?")
            params.append(now())
        if endpoint:
            where.append("endpoint=?")
            params.append(endpoint)
        if since:
            where.append("started_at>=?")
            params.append(since)
        sql = "SELECT * FROM alerts"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [with_display_state(row) for row in self.query(sql, params)]

    def open_alerts(self) -> list[dict[str, Any]]:
        return self.list_alerts("open", limit=100_000)

    def events(self, alert_id: int) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM alert_events WHERE alert_id=? ORDER BY at, id", [alert_id])
        for row in rows:
            row["data"] = json.loads(row["data"]) if row["data"] else None
        return rows

    def alert_counts(self) -> dict[str, int]:
        counts = {"firing": 0, "acknowledged": 0, "silenced": 0}
        for row in self.query(
            "SELECT state, silenced_until > ? AS silenced, count(*) AS n FROM alerts "
            "WHERE state != 'resolved' GROUP BY 1, 2",
            [now()],
        ):
            key = "silenced" if row["silenced"] else row["state"]
            counts[key] = counts.get(key, 0) + row["n"]
        return counts

    @staticmethod
    def _event(
        db: sqlite_utils.Database,
        alert_id: int,
        kind: str,
        at: float | None = None,
        actor: str | None = None,
        note: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> int:
        return int(
            db["alert_events"]
            .insert(
                {
                    "alert_id": alert_id,
                    "at": at or now(),
                    "kind": kind,
                    "actor": actor,
                    "note": note,
                    "data": json.dumps(data) if data else None,
                }
            )
            .last_pk
        )

    @classmethod
    def _enqueue(
        cls, db: sqlite_utils.Database, alert_id: int | None, notifications: list[dict[str, Any]], at: float
    ) -> None:
        """Queue notifications for the notifier. A row with `delivered_at` was already sent directly
        (while the store was unwritable): it is recorded as sent, with its delivery, and never resent."""
        if not notifications:
            return
        for n in notifications:
            delivered_at = n.get("delivered_at")
            row = {
                **{k: v for k, v in n.items() if k not in ("delivered_at", "duration_ms")},
                "alert_id": alert_id,
                "status": "pending" if delivered_at is None else "sent",
                "attempts": 0 if delivered_at is None else 1,
                "next_attempt_at": at,
                "created_at": at,
                "sent_at": delivered_at,
            }
            notification_id = db["notifications"].insert(row).last_pk
            if delivered_at is None:
                continue
            db["deliveries"].insert(
                {
                    "notification_id": notification_id,
                    "at": delivered_at,
                    "ok": 1,
                    "duration_ms": n.get("duration_ms"),
                    "error": None,
                }
            )
            if alert_id is not None:
                cls._event(
                    db,
                    alert_id,
                    "notified",
                    at=delivered_at,
                    actor=n["target"],
                    note="sent directly: the alert store was unwritable",
                    data={"notification": notification_id, "kind": n["kind"], "attempt": 1, "direct": True},
                )
        if alert_id is not None:
            db.execute("UPDATE alerts SET last_notified_at=? WHERE id=?", [at, alert_id])

    # -- notification outbox ---------------------------------------------------------------------------
    # A row is `pending` until delivered (`sent`), given up (`dead`) or silenced. While a notifier sends
    # it, `sending_at`/`sending_by` say so (`mark_sending`), and `record_delivery` clears them. A mark
    # older than a delivery may take belongs to a sender that stopped mid-delivery: whether that page
    # arrived is unknown, so the row is due again, and is sent as a possible repeat. Until then, the
    # alert's later pages to that channel wait behind it (a resolve never overtakes its firing page).
    _HELD = (
        "EXISTS (SELECT 1 FROM notifications e WHERE e.alert_id=n.alert_id AND e.channel=n.channel "
        "AND e.id<n.id AND e.status='pending' AND e.sending_at>?)"
    )

    def due_notifications(self, limit: int = 50, stale_after: float = 0.0) -> list[dict[str, Any]]:
        """Pending rows due now, oldest first, and rows marked as being sent more than `stale_after`
        seconds ago (their sender stopped before recording the delivery)."""
        at = now()
        return self.query(
            "SELECT * FROM notifications n WHERE status='pending' AND ("
            f"(sending_at IS NULL AND next_attempt_at<=? AND NOT {self._HELD}) OR sending_at<=?"
            ") ORDER BY next_attempt_at, id LIMIT ?",
            [at, at - stale_after, at - stale_after, limit],
        )

    def next_due_at(self, stale_after: float = 0.0) -> float | None:
        """When `due_notifications` next has something (a held row falls due with the mark it waits on)."""
        rows = self.query(
            "SELECT min(CASE WHEN sending_at IS NOT NULL THEN sending_at + ? "
            f"WHEN {self._HELD} THEN NULL ELSE next_attempt_at END) AS at "
            "FROM notifications n WHERE status='pending'",
            [stale_after, now() - stale_after],
        )
        return rows[0]["at"] if rows else None

    def mark_sending(self, notification: dict[str, Any], by: str) -> dict[str, Any] | None:
        """Mark a due row as being sent by `by`, right before its delivery; the row as marked, or None
        if it is no longer the row that was read (sent, silenced or marked meanwhile).

        A row that was already marked was being sent by someone who stopped before recording it: its
        `interrupted` count goes up and its alert's timeline says so (`notify_interrupted`)."""
        at = now()
        with self.write() as db:
            rows = self.query(
                "SELECT * FROM notifications WHERE id=? AND status='pending' AND sending_at IS ?",
                [notification["id"], notification["sending_at"]],
            )
            if not rows:
                return None
            row = rows[0]
            if row["sending_at"] is not None:
                row["interrupted"] += 1
                if row["alert_id"]:
                    self._event(
                        db,
                        row["alert_id"],
                        "notify_interrupted",
                        at=at,
                        actor=row["target"],
                        note=(
                            f"{row['sending_by'] or 'a watcher'} stopped while sending this {row['kind']} "
                            f"page ({time.strftime('%H:%M:%S UTC', time.gmtime(row['sending_at']))}), "
                            "before recording whether it arrived: sent again, marked as a possible repeat"
                        ),
                        data={
                            "notification": row["id"],
                            "kind": row["kind"],
                            "sender": row["sending_by"],
                            "since": row["sending_at"],
                        },
                    )
            row["sending_at"], row["sending_by"] = at, by
            db.execute(
                "UPDATE notifications SET sending_at=?, sending_by=?, interrupted=? WHERE id=?",
                [at, by, row["interrupted"], row["id"]],
            )
        return row

    def record_delivery(
        self,
        notification: dict[str, Any],
        ok: bool,
        duration_ms: float,
        error: str | None,
        retry_at: float | None,
    ) -> None:
        """One attempt: the delivery row, the notification's new status, and an event on its alert.

        A row silenced while its delivery was under way stays silenced unless that delivery got through.
        """
        at = now()
        attempts = notification["attempts"] + 1
        status = "sent" if ok else ("pending" if retry_at is not None else "dead")
        with self.write() as db:
            db["deliveries"].insert(
                {
                    "notification_id": notification["id"],
                    "at": at,
                    "ok": int(ok),
                    "duration_ms": duration_ms,
                    "error": error,
                }
            )
            db.execute(
                "UPDATE notifications SET status=CASE WHEN status='silenced' AND ?!='sent' THEN status "
                "ELSE ? END, attempts=?, next_attempt_at=?, sent_at=?, last_error=?, sending_at=NULL, "
                "sending_by=NULL, interrupted=max(interrupted, ?) WHERE id=?",
                [
                    status,
                    status,
                    attempts,
                    retry_at or notification["next_attempt_at"],
                    at if ok else None,
                    error,
                    notification.get("interrupted") or 0,
                    notification["id"],
                ],
            )
            if notification.get("alert_id"):
                kind = "notified" if ok else ("notify_failed" if retry_at is not None else "notify_gave_up")
                data: dict[str, Any] = {
                    "notification": notification["id"],
                    "kind": notification["kind"],
                    "attempt": attempts,
                }
                if notification.get("interrupted"):
                    data["possible_repeat"] = True
                self._event(
                    db,
                    notification["alert_id"],
                    kind,
                    at=at,
                    actor=notification["target"],
                    note=error,
                    data=data,
                )

    def notifications_for(self, alert_id: int) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM notifications WHERE alert_id=? ORDER BY id", [alert_id])

    def deliveries(self, notification_id: int | None = None) -> list[dict[str, Any]]:
        if notification_id is None:
            return self.query("SELECT * FROM deliveries ORDER BY id")
        return self.query("SELECT * FROM deliveries WHERE notification_id=? ORDER BY id", [notification_id])

    # -- audit ---------------------------------------------------------------------------------------
    @staticmethod
    def _audit(
        db: sqlite_utils.Database,
        *,
        actor: str,
        action: str,
        result: str,
        model: str | None = None,
        alias: str | None = None,
        from_version: str | None = None,
        to_version: str | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        alert_id: int | None = None,
        endpoint: str | None = None,
        at: float | None = None,
    ) -> int:
        return int(
            db["audit"]
            .insert(
                {
                    "at": at or now(),
                    "actor": actor,
                    "action": action,
                    "model": model,
                    "alias": alias,
                    "from_version": from_version,
                    "to_version": to_version,
                    "reason": reason,
                    "result": result,
                    "detail": json.dumps(detail) if detail else None,
                    "alert_id": alert_id,
                    "endpoint": endpoint,
                }
            )
            .last_pk
        )

    def add_audit(self, **row: Any) -> int:
        """Append one audit row (actor, action, result, model, alias, from/to version, reason, detail)."""
        with self.write() as db:
            return self._audit(db, **row)

    def update_audit(
        self, audit_id: int, result: str | None = None, detail: dict[str, Any] | None = None
    ) -> None:
        with self.write() as db:
            if result is not None:
                db.execute("UPDATE audit SET result=? WHERE id=?", [result, audit_id])
            if detail is not None:
                db.execute("UPDATE audit SET detail=? WHERE id=?", [json.dumps(detail), audit_id])

    def list_audit(
        self,
        model: str | None = None,
        action: str | None = None,
        limit: int = 200,
        endpoint: str | None = None,
    ) -> list[dict[str, Any]]:
        where, params = [], []  # type: ignore[var-annotated]
        for column, value in (("model", model), ("action", action), ("endpoint", endpoint)):
            if value:
                where.append(f"{column}=?")
                params.append(value)
        sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = self.query(sql, params)
        for row in rows:
            row["detail"] = json.loads(row["detail"]) if row["detail"] else None
        return rows

    # -- the engine lease: one process probes and notifies per store ---------------------------------
    def acquire_lease(self, owner: str, ttl: float, name: str = "engine") -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one."""
        at = now()
        with self.write() as db:
            rows = self.query("SELECT * FROM lease WHERE name=?", [name])
            if rows and rows[0]["owner"] != owner and rows[0]["expires_at"] > at:
                return False
            acquired = rows[0]["acquired_at"] if rows and rows[0]["owner"] == owner else at
            db["lease"].upsert(
                {
                    "name": name,
                    "owner": owner,
                    "pid": os.getpid(),
                    "host": os.uname().nodename,
                    "acquired_at": acquired,
                    "expires_at": at + ttl,
                },
                pk="name",
            )
        return True

    def release_lease(self, owner: str, name: str = "engine") -> None:
        with self.write() as db:
            db.execute("DELETE FROM lease WHERE name=? AND owner=?", [name, owner])

    def lease_holder(self, name: str = "engine") -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM lease WHERE name=? AND expires_at>?", [name, now()])
        return rows[0] if rows else None

    # -- endpoint status and rollups, so followers see what the lease holder sees ---------------------
    def write_status(self, rows: list[dict[str, Any]], engine: dict[str, Any] | None = None) -> None:
        """Endpoint snapshots, and the writing engine's health (`owner`, `state`, `reason`)."""
        at = now()
        with self.write() as db:
            db["endpoint_status"].upsert_all(
                [{"name": r["name"], "updated_at": at, "data": json.dumps(r)} for r in rows], pk="name"
            )
            if engine is not None:
                db.execute("DELETE FROM engine_health WHERE owner!=?", [engine["owner"]])
                db["engine_health"].upsert({**engine, "updated_at": at}, pk="owner")

    def engine_health(self, owner: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM engine_health WHERE owner=?", [owner])
        return rows[0] if rows else None

    def read_status(self) -> list[dict[str, Any]]:
        return [
            json.loads(row["data"]) | {"updated_at": row["updated_at"]}
            for row in self.query("SELECT * FROM endpoint_status ORDER BY name")
        ]

    def write_rollups(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.write() as db:
                db["rollups"].upsert_all(rows, pk=("endpoint", "minute"))

    def rollups(self, endpoint: str, since: float) -> list[dict[str, Any]]:
        return self.query(
            "SELECT * FROM rollups WHERE endpoint=? AND minute>=? ORDER BY minute",
            [endpoint, int(since // 60)],
        )


def with_display_state(alert: dict[str, Any]) -> dict[str, Any]:
    """`state` is what happened; `display_state` adds `silenced` while a silence is in force."""
    silenced = (
        alert.get("silenced_until") and alert["silenced_until"] > now() and alert["state"] != "resolved"
    )
    alert["display_state"] = "silenced" if silenced else alert["state"]
    return alert


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
