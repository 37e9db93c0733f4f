"""Sampling the console host with psutil: CPU, memory, and the processes behind local endpoints.

Blocking (walks /proc): call from a thread worker. Keeps `psutil.Process` objects between calls so
per-process CPU percentages are measured over the interval between samples.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import psutil

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"}


@dataclass
class ProcSample:
    endpoint: str
    pid: int
    name: str
    cpu: float
    rss: int


@dataclass
class HostSample:
    cpu: float
    mem_percent: float
    mem_used: int
    mem_total: int
    load: tuple[float, float, float] | None = None
    procs: list[ProcSample] = field(default_factory=list)


def local_port(url: str, nodename: str | None = None) -> int | None:
    parsed = urlparse(url)
    if parsed.hostname not in LOCAL_HOSTS and parsed.hostname != (nodename or os.uname().nodename):
        return None
    return parsed.port or (443 if parsed.scheme == "https" else 80)


class HostSampler:
    """Callable: `sampler([(endpoint name, url), ...]) -> HostSample`."""

    PORT_CACHE_SECONDS = 30.0

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._ports: dict[int, int] = {}
        self._ports_at = 0.0
        # (endpoints, [(name, port) of those on this host]): parsing 10,000 URLs every sample cost
        # ~0.14 s of CPU each time, and the endpoints rarely change.
        self._local: tuple[list[tuple[str, str]], list[tuple[str, int]]] = ([], [])
        psutil.cpu_percent(None)

    def _local_endpoints(self, endpoints: list[tuple[str, str]]) -> list[tuple[str, int]]:
        if endpoints != self._local[0]:
            nodename = os.uname().nodename
            ports = ((name, local_port(url, nodename)) for name, url in endpoints)
            self._local = (list(endpoints), [(name, port) for name, port in ports if port])
        return self._local[1]

    def _listeners(self) -> dict[int, int]:
        if time.monotonic() - self._ports_at > self.PORT_CACHE_SECONDS:
            ports: dict[int, int] = {}
            try:
                for conn in psutil.net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN and conn.pid and conn.laddr:
                        ports.setdefault(conn.laddr.port, conn.pid)
            except (psutil.AccessDenied, OSError):
                pass
            self._ports, self._ports_at = ports, time.monotonic()
        return self._ports

    def __call__(self, endpoints: list[tuple[str, str]]) -> HostSample:
        memory = psutil.virtual_memory()
        try:
            load = psutil.getloadavg()
        except (AttributeError, OSError):
            load = None
        sample = HostSample(
            cpu=psutil.cpu_percent(None),
            mem_percent=memory.percent,
            mem_used=memory.used,
            mem_total=memory.total,
            load=load,
        )
        local = self._local_endpoints(endpoints)
        listeners = self._listeners() if local else {}
        for name, port in local:
            pid = listeners.get(port)
            if not pid:
                continue
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = self._procs[pid] = psutil.Process(pid)
                    proc.cpu_percent(None)
                with proc.oneshot():
                    sample.procs.append(
                        ProcSample(name, pid, proc.name(), proc.cpu_percent(None), proc.memory_info().rss)
                    )
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                self._procs.pop(pid, None)
                self._ports_at = 0.0
        return sample


def fmt_bytes(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if n < 1024 or unit == "T":
            return f"{n:.0f}{unit}" if unit in ("B", "K") else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"
