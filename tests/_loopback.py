"""Loopback servers for tests: a fault-injecting model endpoint and a notification sink.

Both are real HTTP servers on 127.0.0.1 in background threads; tests change their behaviour on the
fly and wait on what they record (poll-until-deadline, never fixed sleeps).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """`handler` answering on 127.0.0.1:`port` from a background thread, until `stop_serving`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def stop_serving(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


async def async_wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


@dataclass
class Faults:
    """What the fault server does right now; tests flip these fields."""

    mode: str = "ok"
    """ok | error (HTTP 500) | slow | garbage | wrong_shape | reset | huge"""
    delay: float = 0.0
    error_rate: float = 0.0
    body: bytes | None = None


class FaultServer:
    """Speaks the MLflow scoring protocol (`/ping`, `/invocations`, `/metrics`, `/model-info`), badly
    on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults = Faults()
        self.requests = 0
        self.errors = 0
        self.version = "1"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._counter = 0

    def start(self) -> FaultServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/ping", self._ping)
        app.router.add_post("/invocations", self._invocations)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/model-info", self._model_info)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._runner is not None
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def run_in_server(self, change: Callable[[], object]) -> None:
        """`change` on the server's own thread, between requests (their counting is not atomic)."""
        asyncio.run_coroutine_threadsafe(self._call(change), self._loop).result(10)

    async def _call(self, change: Callable[[], object]) -> None:
        change()

    async def _faulty(self, request: web.Request, ok: Callable[[], web.Response]) -> web.StreamResponse:
        faults = self.faults
        self.requests += 1
        if faults.delay or faults.mode == "slow":
            await asyncio.sleep(faults.delay or 3.0)
        self._counter += 1
        failing = faults.mode == "error" or (
            faults.error_rate and (self._counter % 100) < faults.error_rate * 100
        )
        if failing:
            self.errors += 1
            return web.Response(status=500, text=faults.body.decode() if faults.body else "internal error")
        if faults.mode == "garbage":
            return web.Response(
                body=faults.body or b"\x1b[31m<html>[bold red]oops</html>", content_type="text/html"
            )
        if faults.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if faults.mode == "huge":
            return web.Response(
                body=b'{"predictions": [' + b"1," * 3_000_000 + b"1]}", content_type="application/json"
            )
        return ok()

    async def _ping(self, request: web.Request) -> web.StreamResponse:
        return await self._faulty(request, lambda: web.Response(text="\n"))

    async def _invocations(self, request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        rows = len(payload.get("dataframe_split", {}).get("data", [])) or 1

        def answer() -> web.Response:
            if self.faults.mode == "wrong_shape":
                return web.json_response({"predictions": []})
            return web.json_response({"predictions": [0] * rows})

        return await self._faulty(request, answer)

    async def _metrics(self, request: web.Request) -> web.Response:
        ok = self.requests - self.errors
        lines = [
            "# TYPE http_requests_total counter",
            f'http_requests_total{{handler="/invocations",method="POST",status="200"}} {ok}',
            f'http_requests_total{{handler="/invocations",method="POST",status="500"}} {self.errors}',
            "# TYPE http_request_duration_seconds histogram",
        ]
        slow = 1 if (self.faults.delay or self.faults.mode == "slow") else 0
        for bound in ("0.01", "0.1", "1.0", "+Inf"):
            count = self.requests if (bound != "0.01" or not slow) else 0
            lines.append(
                f'http_request_duration_seconds_bucket{{handler="/invocations",le="{bound}"}} {count}'
            )
        lines.append(f'http_request_duration_seconds_count{{handler="/invocations"}} {self.requests}')
        lines.append(f'http_request_duration_seconds_sum{{handler="/invocations"}} {self.requests * 0.005}')
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _model_info(self, request: web.Request) -> web.Response:
        return web.json_response({"model_name": "m", "model_version": self.version})


@dataclass
class Sink:
    """An HTTP endpoint apprise's `json://` posts to. `mode`: ok | fail (500) | hang (never answers)."""

    port: int = field(default_factory=free_port)
    mode: str = "ok"
    delay: float = 0.0
    """Seconds before answering a POST that succeeds (a slow but working pager)."""
    on_receive: Callable[[dict[str, Any]], None] | None = None
    """Called with each message that arrives, before it is recorded and answered (e.g. to kill the
    sender while its delivery is under way)."""
    received: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    """Request path of every attempt (tokens in `json://host/path/TOKEN` URLs arrive here)."""
    attempts: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def start(self) -> Sink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.attempts += 1
                sink.paths.append(self.path)
                if sink.mode == "hang":
                    time.sleep(6)
                    return
                message = json.loads(body)
                if sink.on_receive is not None:
                    sink.on_receive(message)
                if sink.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                time.sleep(sink.delay)
                sink.received.append(message | {"_at": time.time()})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def titles(self) -> list[str]:
        return [m.get("title", "") for m in self.received]


@dataclass
class RefusingProxy:
    """An HTTP proxy on loopback in front of a real server (an `mlflow server`) that answers the
    requests `refuse(method, path)` picks with `403 PERMISSION_DENIED`, as an authenticating registry
    does for a user without the right, and passes every other request through unchanged."""

    upstream: str
    refuse: Callable[[str, str], bool]
    port: int = field(default_factory=free_port)
    refused: list[tuple[str, str]] = field(default_factory=list)
    passed: list[tuple[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RefusingProxy:
        proxy = self
        upstream = urllib.parse.urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                request = (self.command, self.path.split("?", 1)[0])
                if proxy.refuse(*request):
                    proxy.refused.append(request)
                    self._answer(
                        403,
                        "application/json",
                        json.dumps(
                            {"error_code": "PERMISSION_DENIED", "message": "Permission denied"}
                        ).encode(),
                    )
                    return
                proxy.passed.append(request)
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                    }
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    self._answer(
                        response.status, response.getheader("Content-Type", "text/plain"), response.read()
                    )
                finally:
                    connection.close()

            def _answer(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
