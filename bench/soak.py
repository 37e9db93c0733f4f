"""Soak: real `mlops-console watch` processes through outages, kill -9 restarts, lease takeovers, a
locked store and a full disk. Every incident must page exactly once and resolve exactly once.

`python -m bench.soak --cycles 28` prints a table and one JSON line: incidents, pages, resolves,
duplicates, missing, flapping pages, page and resolve delays per fault plan. Exit 0 when every incident
paged and resolved exactly once (and the store holds one resolved alert per incident), else 1.

Each incident breaks one loopback `FaultServer` (tests/_loopback.py) with HTTP 500s and heals it later;
a real apprise `json://` sink stamps each page on arrival. Incidents rotate over the endpoints so no
fingerprint fires often enough to count as flapping. Fault plans, applied during the outage:

- `plain`: nothing else.
- `sigint`: after the page, stop the watcher with SIGINT and start a new one.
- `kill9`: once the page is delivered and recorded, SIGKILL the watcher and start a new one (it waits
  for the lease to expire). A kill between a delivery and its record is the one case that pages twice
  (the second page says it may be a repeat): `tests/test_soak.py` covers it deterministically.
- `kill9_early`: SIGKILL the watcher right after the break, before it can page; the next one must.
- `takeover`: start a standby watcher, then SIGKILL the leader (its page recorded); the standby takes
  over the lease.
- `lock`: another connection holds `BEGIN EXCLUSIVE` on the store from before the break until past the
  busy timeout and the direct-page bound.
- `disk_full`: the watcher cannot grow any file (`fsize`: RLIMIT_FSIZE set with prlimit on its pid, no
  root needed; SQLite gets I/O errors) or the store's tmpfs is filled (`tmpfs`: root only; SQLite gets
  "database or disk is full") over the same span.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_console.core.notifier import POSSIBLE_REPEAT

PLANS = ("plain", "sigint", "kill9", "kill9_early", "takeover", "lock", "disk_full")
STORE_FAULT_SECONDS = 13.0
"""Lock / full disk duration: past the store's 10 s busy timeout and the 10 s direct-page bound."""
AFTER_TAKEOVER = 2.0
"""Seconds the outage goes on once a new watcher leads, so it has to live with the adopted alert."""
WAIT = 60.0


@dataclass
class Incident:
    endpoint: str
    plan: str
    broke_at: float = 0.0
    healed_at: float = 0.0
    page_at: float | None = None
    resolve_at: float | None = None
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


class Watchers:
    """The `watch` processes of one soak: start, find the leader, stop; stderr kept per process."""

    def __init__(self, config: Path, store: Path, logs: Path) -> None:
        self.config, self.store, self.logs = config, store, logs
        self.procs: list[subprocess.Popen[bytes]] = []
        self.exit_codes: dict[int, int] = {}

    def start(self) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"watch-{len(self.procs)}.log", "wb")  # noqa: SIM115 (kept while it runs)
        # stderr through a pipe drained by a thread: a file would itself hit the disk_full fault.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlops_console",
                "--config",
                str(self.config),
                "watch",
                "--log-format",
                "json",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        threading.Thread(target=_drain, args=(proc, log), daemon=True).start()
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def leader(self, timeout: float = WAIT) -> subprocess.Popen[bytes]:
        """The live watcher holding an unexpired lease (waiting for one to take it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = _lease_pid(self.store)
            for proc in self.alive():
                if proc.pid == pid:
                    return proc
            time.sleep(0.1)
        raise TimeoutError("no watcher took the lease")

    def kill(self, proc: subprocess.Popen[bytes], sig: int) -> None:
        proc.send_signal(sig)
        self.exit_codes[proc.pid] = proc.wait(30)

    def stop_all(self) -> None:
        for proc in self.alive():
            self.kill(proc, signal.SIGTERM)


def _drain(proc: subprocess.Popen[bytes], log: Any) -> None:
    assert proc.stderr is not None
    with log:
        for line in proc.stderr:
            log.write(line)
            log.flush()


def _lease_pid(store: Path) -> int | None:
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
        try:
            row = conn.execute("SELECT pid FROM lease WHERE name='engine' AND expires_at>?", [time.time()])
            found = row.fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return found[0] if found else None


class StoreFault:
    """A lock held by another connection, or a disk the watcher cannot grow files on."""

    def __init__(self, kind: str, store: Path, disk_full: str) -> None:
        self.kind, self.store, self.disk_full = kind, store, disk_full
        self._release = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def start(self, leader_pid: int) -> None:
        if self.kind == "lock":
            locked = threading.Event()
            self._thread = threading.Thread(target=self._hold_lock, args=(locked,), daemon=True)
            self._thread.start()
            locked.wait(10)
        elif self.disk_full == "fsize":
            self._pid = leader_pid
            _, hard = resource.prlimit(leader_pid, resource.RLIMIT_FSIZE)
            resource.prlimit(leader_pid, resource.RLIMIT_FSIZE, (4096, hard))
        else:
            filler = self.store.parent / "filler"
            with open(filler, "wb") as f, contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()

    def _hold_lock(self, locked: threading.Event) -> None:
        conn = sqlite3.connect(self.store, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        self._release.wait(120)
        conn.execute("COMMIT")
        conn.close()

    def stop(self) -> None:
        if self.kind == "lock":
            self._release.set()
            assert self._thread is not None
            self._thread.join(10)
        elif self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                _, hard = resource.prlimit(self._pid, resource.RLIMIT_FSIZE)
                resource.prlimit(self._pid, resource.RLIMIT_FSIZE, (hard, hard))
        else:
            (self.store.parent / "filler").unlink(missing_ok=True)


def _config(path: Path, store: Path, servers: list[Any], sink_url: str, interval: float) -> None:
    endpoints = "".join(
        f"""
[[endpoints]]
name = "ep{i}"
url = "{server.url}"
interval = {interval}
timeout = {interval}
payload = '{{"dataframe_split": {{"columns": ["a"], "data": [[1.0]]}}}}'
"""
        for i, server in enumerate(servers)
    )
    path.write_text(f'[store]\npath = "{store}"\n{endpoints}\n[[notifications]]\nurl = "{sink_url}"\n')


def run(
    cycles: int,
    endpoints: int,
    plans: tuple[str, ...] = PLANS,
    interval: float = 0.5,
    disk_full: str = "fsize",
    workdir: Path | None = None,
    store_fault: float = STORE_FAULT_SECONDS,
) -> dict[str, Any]:
    from tests._loopback import FaultServer, Sink

    workdir = workdir or Path(tempfile.mkdtemp(prefix="soak-"))
    store_dir = workdir / "store"
    store_dir.mkdir(parents=True, exist_ok=True)
    mounted = False
    if "disk_full" in plans and disk_full == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(store_dir)], check=True)
        mounted = True
    store = store_dir / "console.db"
    servers = [FaultServer().start() for _ in range(endpoints)]
    sink = Sink().start()
    config = workdir / "console.toml"
    _config(config, store, servers, sink.url, interval)
    watchers = Watchers(config, store, workdir)
    incidents: list[Incident] = []
    started = time.monotonic()

    def arrived(incident: Incident, prefix: str) -> float | None:
        for message in list(sink.received):
            if message["_at"] >= incident.broke_at and message["title"].startswith(
                f"[{prefix}] {incident.endpoint}:"
            ):
                return message["_at"]
        return None

    def wait_message(incident: Incident, prefix: str) -> float | None:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            at = arrived(incident, prefix)
            if at is not None:
                return at
            time.sleep(0.05)
        incident.problems.append(f"no {prefix} within {WAIT:.0f} s")
        return None

    try:
        watchers.start()
        watchers.leader()
        for n in range(cycles):
            incident = Incident(f"ep{n % endpoints}", plans[n % len(plans)])
            cycle_started = time.monotonic()
            server = servers[n % endpoints]
            leader = watchers.leader()
            _wait_up(store, incident.endpoint)
            fault = None
            if incident.plan in ("lock", "disk_full"):
                fault = StoreFault("lock" if incident.plan == "lock" else "disk", store, disk_full)
                fault.start(leader.pid)
                fault_until = time.monotonic() + store_fault
            incident.broke_at = time.time()
            server.faults.mode = "error"
            if incident.plan == "kill9_early":
                time.sleep(interval / 2)  # at most one failed probe: nothing decided, nothing paged
                watchers.kill(leader, signal.SIGKILL)
                watchers.start()
            incident.page_at = wait_message(incident, "FIRING")
            if incident.plan == "sigint":
                watchers.kill(leader, signal.SIGINT)
                watchers.start()
            elif incident.plan == "kill9":
                _wait_recorded(store, incident)
                watchers.kill(leader, signal.SIGKILL)
                watchers.start()
            elif incident.plan == "takeover":
                standby = watchers.start()
                _wait_following(workdir, watchers, standby)
                _wait_recorded(store, incident)
                watchers.kill(leader, signal.SIGKILL)
            if incident.plan in ("sigint", "kill9", "kill9_early", "takeover"):
                watchers.leader()
                time.sleep(AFTER_TAKEOVER)
            if fault is not None:
                time.sleep(max(0.0, fault_until - time.monotonic()))
                fault.stop()
                time.sleep(AFTER_TAKEOVER)
            time.sleep(interval * 4)  # the outage goes on for a few probes after everything
            incident.healed_at = time.time()
            server.faults.mode = "ok"
            incident.resolve_at = wait_message(incident, "RESOLVED")
            incident.seconds = time.monotonic() - cycle_started
            incidents.append(incident)
        time.sleep(3.0)  # room for a late duplicate to arrive before counting
    finally:
        watchers.stop_all()
        alerts = _alerts(store)
        sink.stop()
        for server in servers:
            server.stop()
        if mounted:
            subprocess.run(["umount", "-l", str(store_dir)], check=False)
    return _report(incidents, sink.received, alerts, watchers, time.monotonic() - started, workdir)


def _wait_up(store: Path, endpoint: str) -> None:
    """Until the leader reports the endpoint up again (a healed outage is over before the next)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
            row = conn.execute("SELECT data FROM endpoint_status WHERE name=?", [endpoint]).fetchone()
            conn.close()
        except sqlite3.Error:
            row = None
        if row and json.loads(row[0])["health"] == "up":
            return
        time.sleep(0.1)
    raise TimeoutError(f"{endpoint} never came up")


def _wait_recorded(store: Path, incident: Incident) -> None:
    """Until the store records the incident's page as sent (a delivery is recorded just after it lands)."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1)
            row = conn.execute(
                "SELECT count(*) FROM notifications n JOIN alerts a ON a.id=n.alert_id WHERE a.endpoint=? "
                "AND a.started_at>=? AND n.kind IN ('firing', 'flapping') AND n.status='sent'",
                [incident.endpoint, incident.broke_at],
            ).fetchone()
            conn.close()
        except sqlite3.Error:
            row = None
        if row and row[0]:
            return
        time.sleep(0.05)
    incident.problems.append(f"page not recorded within {WAIT:.0f} s")


def _wait_following(workdir: Path, watchers: Watchers, standby: subprocess.Popen[bytes]) -> None:
    """Until the standby runs its engine (it logged its start); it then follows the lease holder."""
    log = workdir / f"watch-{watchers.procs.index(standby)}.log"
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if log.exists() and b'"event": "start"' in log.read_bytes():
            return
        time.sleep(0.1)
    raise TimeoutError("standby watcher did not start")


def _alerts(store: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(store, timeout=30)
    conn.row_factory = sqlite3.Row
    rows = [dict(r) for r in conn.execute("SELECT id, endpoint, rule, state, started_at FROM alerts")]
    conn.close()
    return rows


def _report(
    incidents: list[Incident],
    received: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    watchers: Watchers,
    seconds: float,
    workdir: Path,
) -> dict[str, Any]:
    titles = [m["title"] for m in received]
    fired = sum(t.startswith("[FIRING]") for t in titles)
    resolved = sum(t.startswith("[RESOLVED]") for t in titles)
    flapping = sum(t.startswith("[FLAPPING]") for t in titles)
    per_endpoint_ok = True
    for endpoint in {i.endpoint for i in incidents}:
        expected = ["FIRING", "RESOLVED"] * sum(i.endpoint == endpoint for i in incidents)
        got = [t[1 : t.index("]")] for t in titles if t.split("] ", 1)[1].startswith(f"{endpoint}:")]
        per_endpoint_ok &= got == expected
    page_delays: dict[str, list[float]] = {i.plan: [] for i in incidents}
    for i in incidents:
        if i.page_at is not None:
            page_delays[i.plan].append(i.page_at - i.broke_at)
    resolve_delays = [i.resolve_at - i.healed_at for i in incidents if i.resolve_at is not None]
    wrong_alerts = [a for a in alerts if a["state"] != "resolved"]
    ok = (
        fired == resolved == len(incidents) == len(alerts)
        and not flapping
        and per_endpoint_ok
        and not wrong_alerts
        and not any(i.problems for i in incidents)
    )
    killed = sum(code == -signal.SIGKILL for code in watchers.exit_codes.values())
    clean = [code for code in watchers.exit_codes.values() if code != -signal.SIGKILL]
    return {
        "ok": ok,
        "incidents": len(incidents),
        "pages": fired,
        "resolves": resolved,
        "duplicates": max(0, fired - len(incidents)) + max(0, resolved - len(incidents)),
        "missing": max(0, len(incidents) - fired) + max(0, len(incidents) - resolved),
        "flapping_pages": flapping,
        "possible_repeats": sum(POSSIBLE_REPEAT in m.get("message", "") for m in received),
        "alerts_in_store": len(alerts),
        "alerts_not_resolved": len(wrong_alerts),
        "pages_in_order": per_endpoint_ok,
        "watchers_started": len(watchers.procs),
        "kill9": killed,
        "clean_exits_nonzero": sum(code != 0 for code in clean),
        "max_page_delay_s": round(max((d for ds in page_delays.values() for d in ds), default=0.0), 2),
        "max_page_delay_by_plan_s": {p: round(max(ds), 2) for p, ds in page_delays.items() if ds},
        "max_resolve_delay_s": round(max(resolve_delays, default=0.0), 2),
        "problems": [f"{i.endpoint} ({i.plan}): {p}" for i in incidents for p in i.problems],
        "cycle_seconds": [f"{i.plan} {i.seconds:.1f}" for i in incidents],
        "seconds": round(seconds, 1),
        "logs": str(workdir),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=len(PLANS) * 4, help="incidents (default: 28)")
    parser.add_argument(
        "--endpoints", type=int, help="default: half the cycles, so no endpoint fires often enough to flap"
    )
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--plans", nargs="+", choices=PLANS, default=list(PLANS))
    parser.add_argument("--disk-full", choices=("fsize", "tmpfs"), default="fsize")
    args = parser.parse_args(argv)
    if args.disk_full == "tmpfs" and os.geteuid() != 0:
        parser.error("--disk-full tmpfs mounts a tmpfs: run as root, or use fsize")
    endpoints = args.endpoints or max(1, (args.cycles + 1) // 2)
    report = run(args.cycles, endpoints, tuple(args.plans), args.interval, args.disk_full)
    for key, value in report.items():
        print(f"{key:>26}  {value}")
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
