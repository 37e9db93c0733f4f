"""The first-party adapters and the metrics scrape against real loopback HTTP servers: bodies read
whole up to the cap, answers over the cap, JSON bombs, and redirects within and across origins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from mlops_console.config import MetricNames, parse_settings
from mlops_console.core.adapters import MAX_BODY, ProbeResult, new_http_session, probe_endpoint_once
from mlops_console.core.promscrape import MetricsError, scrape
from tests._loopback import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Origin:
    """A loopback HTTP server whose routes a test sets; it counts the requests each path got."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.routes: dict[str, Handler] = {}
        self.hits: dict[str, int] = {}
        self.bodies: list[bytes] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> Origin:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        self.bodies.append(await request.read())
        handler = self.routes.get(request.path)
        return await handler(request) if handler else web.Response(status=404, text="no such route")


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    server = await Origin().start()
    yield server
    await server.stop()


@pytest.fixture
async def other() -> AsyncIterator[Origin]:
    server = await Origin().start()
    yield server
    await server.stop()


def answer(body: bytes, status: int = 200, *, chunked: bool = False) -> Handler:
    """A handler sending `body`; chunked bodies go out in pieces, without a Content-Length."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, status=status, content_type="application/json")
        response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 64 * 1024):
            await response.write(body[start : start + 64 * 1024])
        await response.write_eof()
        return response

    return handle


def redirect(location: str, status: int = 302) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handle


async def probe(url: str, **endpoint: Any) -> ProbeResult:
    settings = parse_settings({"endpoints": [{"name": "ep", "url": url, "timeout": 10, **endpoint}]})
    return await probe_endpoint_once(settings.endpoints[0])


def batch(rows: int) -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["a"], "data": [[1.0]] * rows}}


def predictions(rows: int) -> bytes:
    return json.dumps({"predictions": [0.123456789012] * rows}).encode()


# -- bodies: read whole up to the cap -------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_valid_answer_larger_than_one_read_is_valid(origin: Origin, chunked: bool) -> None:
    rows = 25_000
    body = predictions(rows)
    assert 300_000 < len(body) < MAX_BODY
    origin.routes["/invocations"] = answer(body, chunked=chunked)
    result = await probe(origin.url, payload=batch(rows))
    assert (result.ok, result.valid, result.error) == (True, True, None)


async def test_answer_exactly_at_the_cap_is_checked_one_byte_more_is_too_large(origin: Origin) -> None:
    head = predictions(2)
    at_cap = head + b" " * (MAX_BODY - len(head))  # trailing whitespace is valid JSON
    origin.routes["/invocations"] = answer(at_cap)
    result = await probe(origin.url, payload=batch(2))
    assert (result.ok, result.valid, result.error) == (True, True, None)
    origin.routes["/invocations"] = answer(at_cap + b" ")
    result = await probe(origin.url, payload=batch(2))
    assert (result.ok, result.valid) == (True, None)
    assert (
        result.error
        == f"response too large (over {MAX_BODY} bytes) from /invocations: prediction not checked"
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_answer_over_the_cap_is_too_large_not_invalid_nor_down(origin: Origin, chunked: bool) -> None:
    body = predictions(200_000)
    assert len(body) > 2 * MAX_BODY
    origin.routes["/invocations"] = answer(body, chunked=chunked)
    result = await probe(origin.url, payload=batch(2))
    assert result.ok and result.status == 200 and result.latency is not None
    assert result.valid is None, "an unchecked answer must not count as an invalid prediction"
    assert result.error is not None and result.error.startswith(f"response too large (over {MAX_BODY} bytes)")


async def test_error_status_with_a_huge_body_reports_the_status_and_an_excerpt(origin: Origin) -> None:
    origin.routes["/invocations"] = answer(b"boom " * 500_000, status=503)
    result = await probe(origin.url, payload=batch(1))
    assert not result.ok and result.status == 503
    assert result.error is not None and result.error.startswith("HTTP 503 from /invocations: boom boom")
    assert len(result.error) < 400


async def test_json_bomb_is_an_invalid_answer_not_down(origin: Origin) -> None:
    origin.routes["/invocations"] = answer(b"[" * 100_000 + b"]" * 100_000)
    result = await probe(origin.url, payload=batch(1))
    assert (result.ok, result.valid) == (True, False)
    assert result.error == "response is JSON nested too deeply to check"


async def test_generic_adapter_checks_expected_text_within_the_cap(origin: Origin) -> None:
    big = b"healthy " + b"x" * (2 * MAX_BODY)
    origin.routes["/status"] = answer(big)
    assert (await probe(origin.url, adapter="generic", path="/status")).ok
    assert (await probe(origin.url, adapter="generic", path="/status", expect_body="healthy")).ok
    result = await probe(origin.url, adapter="generic", path="/status", expect_body="ready")
    assert not result.ok
    assert result.error == (
        f"response too large (over {MAX_BODY} bytes) and its first {MAX_BODY} bytes lack 'ready'"
    )
    origin.routes["/status"] = answer(b"starting")
    result = await probe(origin.url, adapter="generic", path="/status", expect_body="ready")
    assert (result.ok, result.error) == (False, "body lacks 'ready': starting")


async def metrics_of(url: str) -> Any:
    async with new_http_session() as http:
        return await scrape(http, url, MetricNames(), timeout=10)


def exposition(filler_series: int, requests: int) -> bytes:
    lines = ["# TYPE http_requests_total counter"]
    lines += [
        f'http_requests_total{{handler="/other{i}",method="GET",status="200"}} 1'
        for i in range(filler_series)
    ]
    lines.append(f'http_requests_total{{handler="/invocations",method="POST",status="200"}} {requests}')
    return ("\n".join(lines) + "\n").encode()


async def test_metrics_page_larger_than_one_read_is_read_whole(origin: Origin) -> None:
    page = exposition(5_000, requests=42)
    assert 300_000 < len(page) < MAX_BODY
    origin.routes["/metrics"] = answer(page, chunked=True)
    sample = await metrics_of(f"{origin.url}/metrics")
    assert sample.requests == 42


async def test_metrics_page_over_the_cap_is_an_error_not_a_partial_count(origin: Origin) -> None:
    origin.routes["/metrics"] = answer(exposition(20_000, requests=42))
    with pytest.raises(MetricsError, match=rf"response too large \(over {MAX_BODY} bytes\)"):
        await metrics_of(f"{origin.url}/metrics")


# -- redirects ---------------------------------------------------------------------------------------------


def ok_ping(origin: Origin) -> None:
    origin.routes["/ping"] = answer(b"\n")


@pytest.mark.parametrize("elsewhere", ["other port", "other host", "other scheme"])
async def test_redirect_to_another_origin_is_reported_not_followed(
    origin: Origin, other: Origin, elsewhere: str
) -> None:
    ok_ping(origin)
    ok_ping(other)
    target = {
        "other port": f"{other.url}/ping",
        # `localhost` reaches the very same server: only the origin, not the socket, may decide.
        "other host": f"http://localhost:{origin.port}/ping",
        "other scheme": f"https://127.0.0.1:{origin.port}/ping",
    }[elsewhere]
    origin.routes["/"] = redirect(target)
    result = await probe(origin.url, adapter="generic", path="/")
    assert not result.ok and result.status == 302
    assert result.error == f"/ redirected to {target} (HTTP 302; another origin, not followed)"
    assert other.hits == {} and origin.hits.get("/ping", 0) == 0


async def test_mlflow_probe_redirected_elsewhere_is_not_up(origin: Origin, other: Origin) -> None:
    ok_ping(other)
    other.routes["/invocations"] = answer(predictions(1))
    origin.routes["/ping"] = redirect(f"{other.url}/ping", 301)
    result = await probe(origin.url)
    assert (result.ok, result.error) == (
        False,
        f"/ping redirected to {other.url}/ping (HTTP 301; another origin, not followed)",
    )
    origin.routes["/invocations"] = redirect(f"{other.url}/invocations", 307)
    result = await probe(origin.url, payload=batch(1))
    assert not result.ok and result.valid is None
    assert (
        result.error
        == f"/invocations redirected to {other.url}/invocations (HTTP 307; another origin, not followed)"
    )
    assert other.hits == {}


async def test_redirect_target_is_shown_without_credentials_or_query(origin: Origin, other: Origin) -> None:
    origin.routes["/ping"] = redirect(f"http://admin:s3cret@127.0.0.1:{other.port}/login?token=abc#frag")
    result = await probe(origin.url)
    assert result.error == (
        f"/ping redirected to http://127.0.0.1:{other.port}/login (HTTP 302; another origin, not followed)"
    )


async def test_same_origin_redirects_are_followed_with_method_and_body(origin: Origin) -> None:
    origin.routes["/ping"] = redirect("/healthz", 301)
    origin.routes["/healthz"] = answer(b"\n")
    result = await probe(origin.url)
    assert (result.ok, result.error) == (True, None)
    assert origin.hits["/healthz"] == 1

    origin.bodies.clear()
    origin.routes["/invocations"] = redirect(f"{origin.url}/v2/invocations", 307)
    origin.routes["/v2/invocations"] = answer(predictions(3))
    result = await probe(origin.url, payload=batch(3))
    assert (result.ok, result.valid, result.error) == (True, True, None)
    sent = json.dumps(batch(3)).encode()
    assert origin.bodies[:2] == [sent, sent], "a 307 must repeat the POST with its body"


async def test_same_origin_redirect_loop_is_bounded(origin: Origin) -> None:
    origin.routes["/ping"] = redirect("/ping")
    result = await probe(origin.url)
    assert not result.ok
    assert result.error == (
        f"/ping redirected more than 5 times, last to {origin.url}/ping (HTTP 302, not followed)"
    )
    assert origin.hits["/ping"] == 6


async def test_generic_adapter_may_expect_the_redirect_itself(origin: Origin, other: Origin) -> None:
    origin.routes["/login"] = redirect(f"{other.url}/sso")
    result = await probe(origin.url, adapter="generic", path="/login", expect_status=302)
    assert (result.ok, result.status) == (True, 302)
    assert other.hits == {}


async def test_metrics_redirected_elsewhere_is_a_scrape_error(origin: Origin, other: Origin) -> None:
    other.routes["/metrics"] = answer(exposition(0, requests=1))
    origin.routes["/metrics"] = redirect(f"{other.url}/metrics")
    with pytest.raises(MetricsError, match="another origin, not followed"):
        await metrics_of(f"{origin.url}/metrics")
    assert other.hits == {}
