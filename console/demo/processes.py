"""Spawning, tying and killing the demo's child processes so none is ever left behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1
# Every demo process carries one of these in its command line; we never kill anything else.
DEMO_MODULES = ("mlops_console.serve", "mlops_console.demo.traffic", "mlops_console.demo.batch")


class EndpointStartError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM when the forking thread's process dies, even on SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    cmd: Sequence[str], log_file: Path, *, env: dict[str, str] | None = None, tie_to_parent: bool = True
) -> subprocess.Popen:
    """Start a detached-from-terminal child in its own process group (Ctrl-C reaches only us, and
    we stop it in order), logging to `log_file`.

    PDEATHSIG fires when the *thread* that forked exits, so it is only set from the main thread;
    children spawned elsewhere rely on `--exit-with-pid` and the atexit handler instead. A
    short-lived spawner (the deploy command) passes tie_to_parent=False.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    tie = (
        tie_to_parent
        and sys.platform.startswith("linux")
        and threading.current_thread() is threading.main_thread()
    )
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if tie else None,
            env=env,
            close_fds=True,
        )


def is_demo_process(pid: int | None, root: Path | None = None) -> bool:
    """Alive, not a zombie, and really one of ours (pids get reused)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    if not any(module in cmdline for module in DEMO_MODULES):
        return False
    return root is None or str(root) in cmdline


def terminate(
    pid: int | None, root: Path | None = None, *, timeout: float = 10.0, hard: bool = False
) -> None:
    """SIGTERM (or SIGKILL when `hard`) the process group, escalate after `timeout`, wait until gone."""
    if not is_demo_process(pid, root):
        return
    assert pid is not None
    _signal_group(pid, signal.SIGKILL if hard else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_demo_process(pid, root):
        if time.monotonic() > deadline:
            _signal_group(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        _reap(pid)
        time.sleep(0.05)
    _reap(pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # children start their own session, so pgid == pid
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect our own exited children so they do not linger as zombies."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])


def wait_until_ready(
    targets: dict[str, tuple[str, Callable[[], bool], Path]], deadline_s: float, *, poll_s: float = 0.1
) -> None:
    """Poll `<url>/ping` of every target until all answer 200.

    targets: name -> (base url, is_alive() callable, log file). Fails fast, naming the endpoint and
    showing its log tail, when a process dies or the deadline passes.
    """
    import httpx

    pending = dict(targets)
    deadline = time.monotonic() + deadline_s
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while pending:
            for name, (url, is_alive, log) in list(pending.items()):
                try:
                    if client.get(f"{url}/ping").status_code == 200:
                        del pending[name]
                        continue
                except httpx.HTTPError:
                    pass
                if not is_alive():
                    raise EndpointStartError(
                        f"endpoint {name} ({url}) exited during start-up:\n{log_tail(log)}"
                    )
            if pending and time.monotonic() > deadline:
                name, (url, _, log) = next(iter(pending.items()))
                raise EndpointStartError(
                    f"endpoint {name} ({url}) not ready after {deadline_s:.0f} s:\n{log_tail(log)}"
                )
            if pending:
                time.sleep(poll_s)
