"""The probe loop's guard: an adapter's probe that never returns is cut off at the endpoint's
timeout + 1 s and counts as a failed probe, unless the adapter's probe is marked as ending by itself
within the timeout (the generic adapter's one request), which then must, even against a server that
stops sending halfway through a body. Real loopback servers; a probe that hangs fails the test at
its deadline instead of hanging the suite."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from mlops_console.config import EndpointSettings, parse_settings
from mlops_console.core.adapters import Adapter, ProbeResult, ends_within_timeout_of
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.sources import ProbeSource, ScheduleStats
from mlops_console_plugins.generic_adapter import GenericAdapter

DEADLINE = 20.0
"""Seconds a test waits for probes that should end in about 1.5 s."""


class StallingServer:
    """Answers every request with its headers and part of its body, then sends nothing more until
    the test ends (a server wedged mid-answer)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.requests = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> StallingServer:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        await self.release.wait()
        writer.close()

    async def stop(self) -> None:
        self.release.set()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def stalling() -> AsyncIterator[StallingServer]:
    server = await StallingServer().start()
    yield server
    await server.stop()


def endpoint(url: str, timeout: float = 0.5) -> EndpointSettings:
    return parse_settings({"endpoints": [{"name": "ep", "url": url, "timeout": timeout}]}).endpoints[0]


class NeverAnswers(Adapter):
    """An adapter whose probe awaits forever (a bug, or a stack's client without a timeout)."""

    name = "never"

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class GenericThenWaits(GenericAdapter):
    """A plugin built on the generic adapter whose probe awaits more after the request."""

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        result = await super().probe(http)
        await asyncio.Event().wait()
        return result


Probe = Callable[[GenericAdapter, aiohttp.ClientSession], Awaitable[ProbeResult]]


def retried(probe: Probe) -> Probe:
    """A plugin's retry around a probe, made the usual way (`functools.wraps` copies the wrapped
    function's attributes): up to five requests, each with the whole timeout."""

    @functools.wraps(probe)
    async def again(self: GenericAdapter, http: aiohttp.ClientSession) -> ProbeResult:
        for _ in range(4):
            result = await probe(self, http)
            if result.ok:
                return result
        return await probe(self, http)

    return again


class RetryingGeneric(GenericAdapter):
    probe = retried(GenericAdapter.probe)  # type: ignore[assignment]


async def probe_once(state: EndpointState) -> EndpointState:
    await asyncio.wait_for(ProbeSource([state], ScheduleStats()).once(), DEADLINE)
    return state


async def test_a_generic_probe_of_a_server_stalled_mid_body_ends_at_its_own_timeout(
    stalling: StallingServer,
) -> None:
    settings = endpoint(stalling.url)
    state = await probe_once(EndpointState(settings, GenericAdapter(settings)))
    assert stalling.requests == 1
    assert (state.health, state.failures) == ("down", 1)
    # The request's own timeout ended it (the guard's would say "probe failed: TimeoutError").
    assert state.last_error is not None and state.last_error.endswith("timed out"), state.last_error


async def test_an_adapter_whose_probe_never_returns_is_cut_off_and_counts_as_failed() -> None:
    settings = endpoint("http://127.0.0.1:9")
    state = await probe_once(EndpointState(settings, NeverAnswers(settings)))
    assert (state.health, state.failures) == ("down", 1)
    assert state.last_error == "probe failed: TimeoutError: "


async def test_a_subclass_that_overrides_the_generic_probe_is_guarded_again(
    stalling: StallingServer,
) -> None:
    settings = endpoint(stalling.url)
    adapter = GenericThenWaits(settings)
    assert ends_within_timeout_of(GenericAdapter(settings)) and not ends_within_timeout_of(adapter)
    state = await probe_once(EndpointState(settings, adapter))
    assert (state.health, state.failures) == ("down", 1)
    assert state.last_error == "probe failed: TimeoutError: "


async def test_a_generic_probe_wrapped_in_retries_is_guarded_again(stalling: StallingServer) -> None:
    """Five requests of 0.5 s each outlive the endpoint's timeout: the guard cuts them off at 1.5 s
    (unguarded, the fifth request's own timeout would end it, saying "timed out")."""
    settings = endpoint(stalling.url)
    adapter = RetryingGeneric(settings)
    assert not ends_within_timeout_of(adapter)
    state = await probe_once(EndpointState(settings, adapter))
    assert (state.health, state.failures) == ("down", 1)
    assert state.last_error == "probe failed: TimeoutError: "
    assert stalling.requests < 5
