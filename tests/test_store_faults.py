"""A locked, read-only, corrupt, missing or foreign store: one line naming the file, exit 3, no traceback.

Real SQLite files throughout: a second connection in `BEGIN EXCLUSIVE` holds the lock, chmod makes a
file or directory read-only (the CLI then runs without the root override of file permissions),
garbage bytes make a file corrupt.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlops_console.cli import main
from mlops_console.config import load_settings
from mlops_console.core.alerts import open_external_alert
from mlops_console.core.store import NewAlert, Store, StoreError, schema
from tests._loopback import wait_for

CLI = [sys.executable, "-m", "mlops_console"]


def write_config(tmp_path: Path, db: Path | None = None, lock_timeout: str = "0.5s") -> Path:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[store]\npath = "{db or tmp_path / "c.db"}"\nlock_timeout = "{lock_timeout}"\n'
        '[[endpoints]]\nname = "iris-prod"\nurl = "http://127.0.0.1:9"\n'
    )
    return config


def seed(config: Path) -> int:
    """A store holding one firing alert and one audit row; returns the alert's id."""
    settings = load_settings(config)
    store = Store(settings.store.path)
    alert_id = open_external_alert(
        store,
        settings,
        rule="down",
        endpoint="iris-prod",
        model="iris",
        version="2",
        severity="critical",
        summary="iris-prod failed 2 consecutive probes",
    )
    store.add_audit(actor="alice", action="promote", result="ok", model="iris", to_version="2")
    store.close()
    return alert_id


def run(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's view of the store, ready to take its lock (a plain second connection)."""
    config = write_config(tmp_path)
    seed(config)
    conn = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


# -- locked ----------------------------------------------------------------------------------------------
def test_read_commands_work_while_another_process_holds_the_write_lock(
    tmp_path: Path, holder: sqlite3.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    holder.execute("BEGIN EXCLUSIVE")
    code, out, err = run(config, "alerts", "list", "--json", capsys=capsys)
    assert code == 0, err
    assert '"endpoint": "iris-prod"' in out
    code, out, err = run(config, "alerts", "show", "1", capsys=capsys)
    assert code == 0 and "iris-prod failed 2 consecutive probes" in out, err
    code, out, err = run(config, "audit", capsys=capsys)
    assert code == 0 and "promote" in out and "alice" in out, err


def test_write_commands_on_a_locked_store_wait_their_bound_then_fail_in_one_line(
    tmp_path: Path, holder: sqlite3.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    holder.execute("BEGIN EXCLUSIVE")
    code, _, err = run(config, "alerts", "ack", "1", "--by", "bob", capsys=capsys)
    assert code == 3
    assert one_line(err) == (
        f"mlops-console: store {tmp_path / 'c.db'}: locked by another process (waited 0.5 s)"
    )
    code, _, err = run(config, "alerts", "silence", "1", "--for", "1h", capsys=capsys)
    assert code == 3 and "locked by another process" in one_line(err)
    holder.execute("ROLLBACK")
    alert = Store(tmp_path / "c.db").get_alert(1)
    assert alert.state == "firing" and alert.silenced_until is None  # nothing half-written
    assert run(config, "alerts", "ack", "1", "--by", "bob", capsys=capsys)[0] == 0
    assert run(config, "alerts", "silence", "1", "--for", "1h", capsys=capsys)[0] == 0


def test_opening_a_current_store_takes_no_lock(tmp_path: Path, holder: sqlite3.Connection) -> None:
    """The console's store (and `watch` restarting) must not wait for a writer just to open the file."""
    holder.execute("BEGIN EXCLUSIVE")
    store = Store(tmp_path / "c.db", lock_timeout=0.2)
    assert [a.id for a in store.list_alerts("open")] == [1]


class Lines:
    """A process's stderr, line by line, collected on a thread so the test can poll with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)


def start_watch(config: Path) -> tuple[subprocess.Popen[str], Lines]:
    proc = subprocess.Popen(
        [*CLI, "--config", str(config), "watch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, Lines(proc)


def test_watch_waits_for_a_locked_store_saying_so_until_it_is_free(
    tmp_path: Path, holder: sqlite3.Connection
) -> None:
    config = tmp_path / "c.toml"
    store_path = tmp_path / "c.db"
    holder.execute("BEGIN EXCLUSIVE")
    first, first_err = start_watch(config)
    second, second_err = start_watch(config)
    try:
        # The first one keeps waiting and keeps saying so (every store.lock_timeout), until stopped.
        waiting = f"store {store_path} locked by another process, waiting..."
        wait_for(lambda: first_err.count(waiting) >= 3, timeout=60, what="repeated waiting messages")
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        wait_for(lambda: first_err.count("stopped while waiting for the store"), timeout=10)

        # The second one starts once the lock is gone.
        wait_for(lambda: second_err.count(waiting), timeout=60, what="waiting message")
        assert not second_err.count("watching")
        holder.execute("ROLLBACK")
        wait_for(lambda: second_err.count("watching 1 endpoints"), timeout=60, what="watch starting")
        assert second_err.count(f"store {store_path} available after")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        assert not any("Traceback" in line for line in first_err.lines + second_err.lines)
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# -- read-only file or directory -------------------------------------------------------------------------
def unprivileged(args: list[str]) -> list[str]:
    """Run without root's override of file permissions, so chmod means what it says."""
    if os.geteuid() != 0:
        return args
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: chmod cannot make a file read-only")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", *args]


def cli_as_user(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        unprivileged([*CLI, "--config", str(config), *args]), capture_output=True, text=True, timeout=120
    )


def test_read_only_store_file_reads_fine_and_refuses_writes_in_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    seed(config)
    db = tmp_path / "c.db"
    db.chmod(0o400)
    listed = cli_as_user(config, "alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"endpoint": "iris-prod"' in listed.stdout
    for args in (("alerts", "ack", "1"), ("alerts", "silence", "1", "--for", "1h"), ("watch",)):
        result = cli_as_user(config, *args)
        assert result.returncode == 3, (args, result.stderr)
        assert one_line(result.stderr) == (
            f"mlops-console: store {db}: not writable: the file (or its directory) is read-only"
        ), args
    db.chmod(0o600)
    assert Store(db).get_alert(1).state == "firing"


def test_read_only_store_directory_gives_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = write_config(tmp_path, data / "c.db")
    seed(config)
    data.chmod(0o500)
    try:
        for args in (("alerts", "list"), ("alerts", "ack", "1"), ("watch",)):
            result = cli_as_user(config, *args)
            assert result.returncode == 3, (args, result.stderr)
            line = one_line(result.stderr)
            assert line.startswith(f"mlops-console: store {data / 'c.db'}: ") and "directory" in line, line
        # A store that does not exist yet cannot be created there either.
        config = write_config(tmp_path, data / "new.db")
        result = cli_as_user(config, "watch")
        assert result.returncode == 3
        assert one_line(result.stderr) == (
            f"mlops-console: store {data / 'new.db'}: cannot create it: Permission denied"
        )
    finally:
        data.chmod(0o700)


# -- corrupt ---------------------------------------------------------------------------------------------
def garbage_file(db: Path) -> None:
    db.write_bytes(os.urandom(16384))


def garbage_pages(db: Path) -> None:
    """A real store whose pages after the first two are overwritten: the header still says SQLite."""
    store = Store(db)
    for i in range(100):
        store.open_alert(
            NewAlert(
                fingerprint=f"f{i}",
                rule="down",
                endpoint="e",
                severity="critical",
                summary="x" * 300,
                started_at=0,
            ),
            [],
        )
    store.close()
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.seek(8192)
        fh.write(os.urandom(size - 8192))


@pytest.mark.parametrize(
    ("damage", "problem"),
    [(garbage_file, "not an SQLite database (file is not a database)"), (garbage_pages, "corrupt (")],
)
def test_corrupt_store_gives_one_line_for_every_command(
    tmp_path: Path, damage, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    db = tmp_path / "c.db"
    damage(db)
    for args in (
        ("alerts", "list"),
        ("alerts", "list", "--json"),
        ("alerts", "show", "1"),
        ("alerts", "ack", "1"),
        ("alerts", "silence", "1", "--for", "1h"),
        ("audit",),
        ("watch",),
    ):
        code, _, err = run(config, *args, capsys=capsys)
        assert code == 3, (args, err)
        line = one_line(err)
        assert line.startswith(f"mlops-console: store {db}: ") and problem in line, (args, line)


# -- missing, and another schema -------------------------------------------------------------------------
def test_missing_store_is_reported_and_never_created_by_commands_that_only_read_or_change_alerts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, tmp_path / "data" / "c.db")
    db = tmp_path / "data" / "c.db"
    for args in (("alerts", "list"), ("alerts", "show", "1"), ("alerts", "ack", "1"), ("audit",)):
        code, _, err = run(config, *args, capsys=capsys)
        assert code == 3, (args, err)
        assert one_line(err).startswith(
            f"mlops-console: store {db}: neither it nor its directory {db.parent} exists"
        ), args
    # `status` probes; it has no use for the store, so a missing (or broken) one neither matters nor appears.
    code, out, err = run(config, "status", capsys=capsys)
    assert code == 1 and "iris-prod" in out and "down" in out, err
    assert not db.parent.exists()
    db.parent.mkdir()
    garbage_file(db)
    code, out, _ = run(config, "status", "--json", capsys=capsys)
    assert code == 1 and '"health": "down"' in out


def test_empty_store_file_is_not_initialised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    (tmp_path / "c.db").write_bytes(b"")
    code, _, err = run(config, "alerts", "list", capsys=capsys)
    assert code == 3 and "never initialised" in one_line(err)
    assert (tmp_path / "c.db").stat().st_size == 0  # a read changes nothing


def test_older_schema_is_read_only_after_upgrade_and_newer_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    seed(config)
    db = tmp_path / "c.db"
    current = len(schema.MIGRATIONS)
    # This code gains a migration: the file is now one schema version behind.
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, "CREATE TABLE extra (x)"])
    code, _, err = run(config, "alerts", "list", capsys=capsys)
    assert code == 3
    assert one_line(err) == (
        f"mlops-console: store {db}: schema version {current} is older than this mlops-console's "
        f"({current + 1}); run `mlops-console watch` or the console once to upgrade it"
    )
    # The read migrated nothing.
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == current
    assert run(config, "alerts", "ack", "1", capsys=capsys)[0] == 0  # a write upgrades it
    assert run(config, "alerts", "list", capsys=capsys)[0] == 0
    monkeypatch.undo()
    # Now the file is newer than this code.
    for args in (("alerts", "list"), ("alerts", "silence", "1", "--for", "1h"), ("watch",)):
        code, _, err = run(config, *args, capsys=capsys)
        assert code == 3, args
        assert one_line(err) == (
            f"mlops-console: store {db}: schema version {current + 1} is newer than this mlops-console "
            f"knows ({current}); upgrade mlops-console"
        )


def test_a_store_path_pointing_at_another_database_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "mlflow.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE experiments (id INTEGER)")
    conn.commit()
    conn.close()
    config = write_config(tmp_path, db)
    for args in (("alerts", "list"), ("watch",)):
        code, _, err = run(config, *args, capsys=capsys)
        assert code == 3
        assert one_line(err) == (
            f"mlops-console: store {db}: not an mlops-console store "
            "(it holds other tables, e.g. 'experiments')"
        )
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert tables == {"experiments"}


def test_a_full_store_fails_in_one_line_and_the_next_write_works(tmp_path: Path) -> None:
    """SQLITE_FULL, as a full disk gives it, through SQLite's own page limit on this connection."""
    config = write_config(tmp_path)
    seed(config)
    store = Store(tmp_path / "c.db")
    pages = store.query("PRAGMA page_count")[0]["page_count"]
    store.query(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreError) as full:
        for i in range(200):  # until a new page is needed
            store.add_event(1, "note", actor="bob", note="x" * 900 + str(i))
    assert str(full.value) == f"store {tmp_path / 'c.db'}: cannot write: the disk is full"
    store.query(f"PRAGMA max_page_count={pages * 100}")
    store.add_event(1, "note", actor="bob", note="after")  # no transaction left open by the failure
    assert [e.note for e in store.events(1)][-1] == "after"
