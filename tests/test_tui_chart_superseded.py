"""The endpoint screen against a slow Prometheus: switching history views fast leaves one chart read
waiting, the newest; the older ones drop their queries instead of each holding a thread until the
timeout. Against a loopback stand-in of Prometheus that holds every range query until told."""

from __future__ import annotations

import gc
import json
import select
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
from tests import sample
from tests._loopback import async_wait_for, free_port
from tests._tui import prometheus_console, settle

SIGNALS = 5
"""Range queries of one chart read: requests, errors, p50, p95, p99."""


class HeldPrometheus:
    """Holds each range query until `release` is set or the client hangs up (counted as dropped)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.release = threading.Event()
        self.received = self.waiting = self.dropped = 0
        self.lock = threading.Lock()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                params = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                with held.lock:
                    held.received += 1
                    held.waiting += 1
                try:
                    if not held.hold(self.connection):
                        with held.lock:
                            held.dropped += 1
                        return
                    start, end, step = (float(params[key]) for key in ("start", "end", "step"))
                    values = [[start + step * n, "2.5"] for n in range(int((end - start) // step) + 1)]
                    result = [{"metric": {"instance": "127.0.0.1:5101"}, "values": values}]
                    body = json.dumps(
                        {"status": "success", "data": {"resultType": "matrix", "result": result}}
                    ).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with held.lock:
                        held.waiting -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def hold(self, connection: socket.socket) -> bool:
        """Until released (True) or the client closed the connection (False)."""
        while not self.release.is_set():
            readable, _, _ = select.select([connection], [], [], 0.02)
            if readable and not connection.recv(1, socket.MSG_PEEK):
                return False
        return True

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def prometheus() -> Iterator[HeldPrometheus]:
    held = HeldPrometheus()
    yield held
    held.stop()


async def test_switching_views_fast_leaves_only_the_newest_read_waiting(
    tmp_path: Path, prometheus: HeldPrometheus, caplog: pytest.LogCaptureFixture
) -> None:
    from mlops_console.core.store import Store

    store = Store(tmp_path / "console.db")
    sample.populate_store(store)
    # A timeout far longer than the test: a read not dropped would hold its queries to the end.
    app = prometheus_console(store, tmp_path / "console.db", prometheus.url, timeout=120.0)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, EndpointDetailScreen)
        await async_wait_for(lambda: prometheus.waiting == SIGNALS, 20, "the hour view's read waiting")
        # Hour -> day -> week -> hour -> day, each before the last answered.
        for _ in range(4):
            await pilot.press("h")
            await pilot.pause()
        assert screen.view == 1
        await async_wait_for(
            lambda: prometheus.received >= 5 * SIGNALS and prometheus.waiting == SIGNALS,
            20,
            "one read waiting, the newest",
        )
        assert prometheus.dropped == prometheus.received - SIGNALS
        prometheus.release.set()
        await settle(pilot)
        # The newest read is the one drawn: the day view, from Prometheus.
        assert screen.view == 1 and str(screen.latency_chart.border_subtitle) == "from Prometheus"
        assert "last day" in screen.latency_chart.render().plain
        assert screen.rollups and all(r.rps == 2.5 for r in screen.rollups)
    # The dropped reads' queries end cancelled, and nothing is logged of them (asyncio logged each as
    # an error, with its traceback, when collected).
    gc.collect()
    assert [r.getMessage() for r in caplog.records if "never retrieved" in r.getMessage()] == []
