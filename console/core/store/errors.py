"""`StoreError`: every SQLite failure that is about the file, not the code, in one line."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path


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


def missing_store(path: Path) -> StoreError:
    if not path.parent.is_dir():
        where = f"neither it nor its directory {path.parent} exists"
    else:
        where = "it does not exist"
    return StoreError(
        path,
        f"{where}; nothing has been recorded there yet (`mlops-console watch` or the console "
        "creates it; check store.path)",
        "missing",
    )


def translate(
    exc: sqlite3.Error,
    path: Path,
    *,
    read_only: bool,
    lock_timeout: float,
    file_exists: Callable[[], bool],
) -> StoreError | None:
    """The `StoreError` for an SQLite error about the file; None for one about the code."""
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", "")
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    if primary in (_BUSY, _LOCKED):
        return StoreError(path, f"locked by another process (waited {lock_timeout:g} s)", "locked")
    if primary == _READONLY:
        if read_only and name != "SQLITE_READONLY":
            # A WAL file can only be read where SQLite may create its -shm file beside it.
            problem = (
                "cannot be read: its directory is not writable and SQLite needs to create "
                f"{path.name}-shm there"
            )
        elif read_only:
            problem = "opened read-only, cannot write"
        elif name == "SQLITE_READONLY_DIRECTORY":
            problem = "not writable: its directory is read-only"
        else:
            problem = "not writable: the file (or its directory) is read-only"
        return StoreError(path, problem, "readonly")
    if primary == _NOTADB:
        return StoreError(path, f"not an SQLite database ({text})", "corrupt")
    if primary == _CORRUPT:
        return StoreError(path, f"corrupt ({text})", "corrupt")
    if primary == _FULL:
        return StoreError(path, "cannot write: the disk is full", "unavailable")
    if primary == _CANTOPEN:
        if not file_exists():
            return missing_store(path)
        return StoreError(path, f"cannot open it ({text}): check its permissions", "unavailable")
    if primary == _IOERR:
        return StoreError(path, f"I/O error ({text})", "unavailable")
    if text.startswith(("no such table", "no such column")):
        return StoreError(path, f"not an mlops-console store ({text})", "corrupt")
    return None
