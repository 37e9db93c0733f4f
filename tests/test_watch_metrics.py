"""The watcher as a Prometheus target (`watch --metrics-addr`) and its heartbeat (`[watch]`).

A real `mlops-console watch` process probes a fault-injecting endpoint on loopback, pages a loopback
sink and calls a loopback heartbeat receiver; its `/metrics` is read back with Prometheus' own parser.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlops_console.core.adapters import ProbeResult
from mlops_console.core.heartbeat import heartbeat_loop
from mlops_console.core.selfmetrics import PREFIX, MetricsServer, SelfMetrics, series_names
from tests._loopback import FaultServer, Sink, async_wait_for, free_port, serve, stop_serving, wait_for

CLI = [sys.executable, "-m", "mlops_console"]


class Beats:
    """A heartbeat receiver (healthchecks.io-like): records the time of every GET."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/ping/abc"
        self.times: list[float] = []
        beats = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                beats.times.append(time.monotonic())
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = serve(self.port, Handler)

    def stop(self) -> None:
        stop_serving(self._server)


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url, timeout=5.0).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float | None:
    return found.get((PREFIX + name, frozenset(labels.items())))


def write_config(tmp_path: Path, body: str) -> Path:
    config = tmp_path / "console.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "console.db"}"\n' + body)
    return config


@pytest.fixture
def endpoint() -> Any:
    server = FaultServer().start()
    yield server
    server.stop()


def test_watch_serves_its_own_view_and_beats_while_healthy(endpoint: FaultServer, tmp_path: Path) -> None:
    sink, beats = Sink().start(), Beats()
    metrics_port = free_port()
    config = write_config(
        tmp_path,
        f"""
[watch]
heartbeat_url = "${{BEAT_URL}}"
heartbeat_interval = 0.2

[[endpoints]]
name = "fraud"
url = "{endpoint.url}"
metrics_url = "{endpoint.url}/metrics"
interval = 0.3
timeout = 1.0

[[notifications]]
url = "{sink.url}"
""",
    )
    env = {"BEAT_URL": beats.url}
    watch = subprocess.Popen(
        [
            *CLI,
            "--config",
            str(config),
            "watch",
            "--log-format",
            "json",
            "--metrics-addr",
            f"127.0.0.1:{metrics_port}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:

        def healthy_view() -> Any:
            try:
                found = samples(url)
            except httpx.HTTPError:
                return None
            return found if value(found, "endpoint_up", endpoint="fraud") == 1 else None

        found = wait_for(healthy_view, timeout=30, what="fraud up in the watcher's /metrics")
        assert value(found, "watchdog") == 1
        assert value(found, "leader") == 1
        assert value(found, "engine_state", state="running") == 1
        assert value(found, "engine_state", state="stalled") == 0
        assert value(found, "endpoint_health", endpoint="fraud", health="up") == 1
        assert (value(found, "probes_total", endpoint="fraud", result="ok") or 0) >= 1
        assert (value(found, "probe_duration_seconds_count", endpoint="fraud") or 0) >= 1
        wait_for(lambda: len(beats.times) >= 3, timeout=20, what="three heartbeats")

        endpoint.faults.mode = "error"
        wait_for(lambda: any("[FIRING] fraud" in t for t in sink.titles()), timeout=20, what="down page")

        def paged_view() -> Any:
            found = samples(url)
            delivered = sum(
                v
                for (name, labels), v in found.items()
                if name == PREFIX + "notifications_total" and ("outcome", "delivered") in labels
            )
            return (
                found
                if delivered and value(found, "alerts_firing", rule="down", severity="critical")
                else None
            )

        found = wait_for(paged_view, timeout=20, what="the page counted in /metrics")
        assert value(found, "endpoint_up", endpoint="fraud") == 0
        assert value(found, "endpoint_health", endpoint="fraud", health="down") == 1
        assert (value(found, "probes_total", endpoint="fraud", result="failed") or 0) >= 1
        assert (value(found, "heartbeats_total", outcome="sent") or 0) >= 3
        names = {name for name, _ in found}
        assert names <= series_names()
        # With probes, a page and heartbeats behind it, every declared series is on the page.
        assert series_names() - names == set(), series_names() - names
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=20)
        sink.stop()
        beats.stop()
    assert watch.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "metrics" for e in events)


def test_heartbeat_stops_while_the_engine_is_not_healthy() -> None:
    beats = Beats()
    state = {"healthy": True}
    calls: list[str] = []

    async def run() -> None:
        task = asyncio.ensure_future(
            heartbeat_loop(beats.url, 0.05, 2.0, lambda: state["healthy"], calls.append)
        )
        try:
            await async_wait_for(lambda: len(beats.times) >= 2, what="beats while healthy")
            state["healthy"] = False
            # Withheld from the next round on: let one in-flight call land, then none may follow.
            await async_wait_for(lambda: len(calls) == len(beats.times), what="in-flight beat")
            stalled_at = len(beats.times)
            withheld_rounds = 0
            while withheld_rounds < 10:
                await asyncio.sleep(0.05)
                withheld_rounds += 1
            assert len(beats.times) == stalled_at
            state["healthy"] = True
            await async_wait_for(lambda: len(beats.times) > stalled_at, what="beats again once healthy")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(run())
    finally:
        beats.stop()
    assert set(calls) == {"sent"}


def test_heartbeat_failures_are_counted_not_fatal() -> None:
    port = free_port()  # nothing listens there
    calls: list[str] = []

    async def run() -> None:
        task = asyncio.ensure_future(
            heartbeat_loop(f"http://127.0.0.1:{port}/hb", 0.05, 1.0, lambda: True, calls.append)
        )
        try:
            await async_wait_for(lambda: len(calls) >= 2, what="two failed calls")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
    assert set(calls) == {"failed"}


def test_metrics_page_holds_exactly_the_declared_series() -> None:
    metrics = SelfMetrics()
    metrics.probed("a", ProbeResult(ok=True, latency=0.02))
    metrics.probed("a", ProbeResult(ok=False, error="x"))
    metrics.heartbeat("sent")
    server = MetricsServer(metrics, "127.0.0.1", 0)
    try:
        found = samples(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.close()
    assert {name for name, _ in found} <= series_names()
    assert value(found, "probe_duration_seconds_bucket", endpoint="a", le="0.025") == 1
    assert value(found, "probe_duration_seconds_bucket", endpoint="a", le="0.01") == 0
    assert value(found, "probe_duration_seconds_bucket", endpoint="a", le="+Inf") == 1
    assert value(found, "probe_duration_seconds_count", endpoint="a") == 1
    assert value(found, "probes_total", endpoint="a", result="failed") == 1
    assert value(found, "heartbeats_total", outcome="sent") == 1


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "--config", str(config), *args], capture_output=True, text=True, timeout=60)


def test_bad_metrics_address_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[watch]\nmetrics_addr = "127.0.0.1:99999"\n')
    checked = cli(config, "config", "check")
    assert checked.returncode == 2
    assert "watch.metrics_addr: port must be a number from 0 to 65535" in checked.stderr
    assert "Traceback" not in checked.stderr

    flag = cli(write_config(tmp_path, ""), "watch", "--metrics-addr", "nowhere")
    assert flag.returncode == 2
    assert "--metrics-addr" in flag.stderr and "HOST:PORT" in flag.stderr

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, f'[watch]\nmetrics_addr = "127.0.0.1:{port}"\n')
        busy = cli(config, "watch")
    assert busy.returncode == 2, busy.stderr
    assert f"watch.metrics_addr: cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr
    assert not (tmp_path / "console.db").exists()  # refused before anything started


def test_heartbeat_url_variable_must_be_set_for_watch(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[watch]\nheartbeat_url = "${NO_SUCH_BEAT_URL}"\n')
    ran = cli(config, "watch")
    assert ran.returncode == 2
    assert "watch.heartbeat_url: environment variable ${NO_SUCH_BEAT_URL} is not set" in ran.stderr
    checked = cli(config, "config", "check")
    assert checked.returncode == 2 and "watch.heartbeat_url" in checked.stderr


def _process_state(pid: int) -> str:
    """`R`, `S`, `T` (stopped)... from /proc; `gone` once the process is reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


def _no_beats_for(beats: Beats, rounds: int, every: float) -> int:
    """Beats that arrive over `rounds` heartbeat intervals (an absence shows only over time): at most
    one call already on the wire when the watcher froze may land."""
    before = len(beats.times)
    window_ends = time.monotonic() + rounds * every
    wait_for(lambda: time.monotonic() >= window_ends, timeout=rounds * every + 5, interval=every / 4)
    return len(beats.times) - before


def test_heartbeats_stop_while_the_watcher_is_frozen_or_killed_and_resume_after(
    endpoint: FaultServer, tmp_path: Path
) -> None:
    """A dead-man's switch must page when the watcher is stuck (its process frozen: SIGSTOP, as a hung
    event loop or a paused container is) or gone (SIGKILL): no heartbeat then; SIGCONT brings them back."""
    sink, beats = Sink().start(), Beats()
    every = 0.2
    config = write_config(
        tmp_path,
        f"""
[watch]
heartbeat_url = "{beats.url}"
heartbeat_interval = {every}

[[endpoints]]
name = "fraud"
url = "{endpoint.url}"
interval = 0.3

[[notifications]]
url = "{sink.url}"
""",
    )
    watch = subprocess.Popen(
        [*CLI, "--config", str(config), "watch"], stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for(lambda: len(beats.times) >= 3, timeout=30, what="heartbeats while healthy")

        watch.send_signal(signal.SIGSTOP)
        wait_for(lambda: _process_state(watch.pid) == "T", timeout=10, what="the watcher frozen")
        assert _no_beats_for(beats, 10, every) <= 1

        watch.send_signal(signal.SIGCONT)
        resumed_from = len(beats.times)
        wait_for(lambda: len(beats.times) >= resumed_from + 3, timeout=30, what="heartbeats resumed")

        watch.kill()
        watch.wait(timeout=10)
        assert _no_beats_for(beats, 10, every) <= 1
        assert not sink.received  # the endpoint stayed up throughout: nothing paged
    finally:
        if watch.poll() is None:
            watch.send_signal(signal.SIGCONT)
            watch.kill()
            watch.wait(10)
        sink.stop()
        beats.stop()
