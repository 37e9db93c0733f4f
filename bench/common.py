"""Shared helpers: the loopback server process, percentiles, subprocess workers, machine info."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def pct(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100) of unsorted values."""
    if not values:
        return None
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: Sequence[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


@contextmanager
def loopserver() -> Iterator[int]:
    """A fast HTTP server in its own process (its CPU is not ours); yields its port."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "bench.loopserver"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield port
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_worker(module: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run `python -m module args` (one measurement in a clean process) and parse its last JSON line."""
    proc = subprocess.run(
        [PYTHON, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONHASHSEED": "0"},
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def emit(result: dict[str, Any]) -> None:
    """A worker's one result line on stdout."""
    print(json.dumps(result), flush=True)


def machine_info() -> dict[str, Any]:
    import psutil

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus_logical": os.cpu_count(),
        "cpus_physical": psutil.cpu_count(logical=False),
        "memory_total_mb": round(psutil.virtual_memory().total / 2**20),
        "loadavg_at_start": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in ("textual", "aiohttp", "httpx", "apprise", "sqlite-utils", "mlflow"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:
            versions[name] = None
    import sqlite3

    versions["sqlite"] = sqlite3.sqlite_version
    info["versions"] = versions
    return info


class RssSampler:
    """Peak RSS of this process, sampled from a daemon thread (plus ru_maxrss at the end)."""

    def __init__(self, every: float = 0.5) -> None:
        import threading

        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            rss = self._proc.memory_info().rss
            self.peak = max(self.peak, rss)
            self.samples.append((time.monotonic(), rss))

    def stop(self) -> int:
        import resource

        self._stop.set()
        self._thread.join(2)
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return max(self.peak, maxrss)
