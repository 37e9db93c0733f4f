"""`watch` stops cleanly on SIGTERM/SIGINT at any moment of its start-up: a service stopped right after
it started must not keep running (a lost signal) and must not die half-started."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests._loopback import wait_for

CLI = [sys.executable, "-m", "mlops_console"]

CONFIG = """
[store]
path = "{store}"

[[endpoints]]
name = "ep"
url = "http://127.0.0.1:9"
interval = 1.0
"""

SIGNAL_AFTER_THE_STORE_OPENED = """
import logging, sys, threading
from mlops_console.commands.watch import _watch
from mlops_console.config import load_settings


class SignalledWhileOpening(threading.Event):
    # The signal lands while the store is being opened: after the last look at the flag before the
    # store was ready, before the event loop's own handlers exist.
    def is_set(self) -> bool:
        seen = super().is_set()
        self.set()
        return seen


sys.exit(_watch(load_settings(sys.argv[1]), logging.getLogger("t"), SignalledWhileOpening()))
"""


def _config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(store=tmp_path / f"{name}.db"))
    return path


def test_a_signal_while_the_store_opens_stops_the_watcher(tmp_path: Path) -> None:
    config = _config(tmp_path, "c")
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_AFTER_THE_STORE_OPENED, str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "c.db").exists()  # the store had been opened: the signal came after that


def test_sigterm_at_any_moment_of_start_up_stops_watch(tmp_path: Path) -> None:
    """Watchers signalled at staggered moments, from interpreter start-up to probing: each one stops,
    cleanly (exit 0) once its handlers are in place, or by the signal's default action before."""
    offsets = [0.25 * i for i in range(1, 13)]
    watchers = []
    started = time.monotonic()
    for i in range(len(offsets)):
        config = _config(tmp_path, f"w{i}")
        watchers.append(
            subprocess.Popen(
                [*CLI, "--config", str(config), "watch"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    pending = dict(enumerate(offsets))
    while pending:
        for i, offset in list(pending.items()):
            if time.monotonic() - started >= offset:
                watchers[i].send_signal(signal.SIGTERM)
                del pending[i]
        time.sleep(0.01)
    try:
        with contextlib.suppress(AssertionError, TimeoutError):
            wait_for(lambda: all(w.poll() is not None for w in watchers), timeout=60)
    finally:
        hung = [i for i, w in enumerate(watchers) if w.poll() is None]
        for w in watchers:
            if w.poll() is None:
                w.kill()
            w.communicate()
    assert hung == [], f"watchers signalled at {[offsets[i] for i in hung]} s kept running"
    codes = [w.returncode for w in watchers]
    assert set(codes) <= {0, -signal.SIGTERM}, codes
