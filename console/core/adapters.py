"""The adapter interface: how the engine talks to one kind of serving stack.

Adapters are plugins found through the `mlops_console.adapters` entry-point group; the first-party
ones (`mlflow`, `generic`) register there exactly as a third-party package would. A plugin that fails
to load is reported and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

import aiohttp

from console.config import EndpointSettings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mlops_console.adapters"
MAX_BODY = 1 << 20
"""Bytes of a response body read at most; a huge body is cut, never buffered whole."""
ERROR_EXCERPT = 300


@dataclass
class ProbeResult:
    ok: bool
    """The endpoint answered as a healthy one should (reachable, expected status)."""
    latency: float | None = None
    """Seconds for the request that measures the serving path."""
    status: int | None = None
    error: str | None = None
    """Why it is not ok (or why the prediction is invalid), with a short excerpt of the response."""
    valid: bool | None = None
    """Whether the synthetic prediction had the expected shape (None: not checked)."""
    served_version: str | None = None
    """The model version the endpoint says it serves (None: the adapter cannot tell)."""


class Adapter(ABC):
    """One endpoint's probe logic. Instances are created once per endpoint and reused."""

    name: ClassVar[str]

    def __init__(self, endpoint: EndpointSettings) -> None:
        self.endpoint = endpoint

    @property
    def wants_example(self) -> bool:
        """True when the adapter would like a synthetic request from the registry."""
        return False

    def set_example(self, payload: dict[str, Any]) -> None:
        """The registry's `serving_input_example.json` for the version this endpoint should serve."""
        return None

    @abstractmethod
    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        """Check the endpoint once. Must not raise for endpoint faults: report them in the result."""


@cache
def _discover() -> dict[str, type[Adapter]]:
    found: dict[str, type[Adapter]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = entry.load()
            if not (isinstance(cls, type) and issubclass(cls, Adapter)):
                raise TypeError(f"{entry.value} is not an Adapter subclass")
        except Exception as exc:
            log.warning("adapter plugin %r could not be loaded, skipped: %s", entry.name, exc)
            continue
        found[entry.name] = cls
    return found


def adapter_names() -> set[str]:
    return set(_discover())


def create_adapter(endpoint: EndpointSettings) -> Adapter:
    return _discover()[endpoint.adapter](endpoint)


def excerpt(body: bytes | str, limit: int = ERROR_EXCERPT) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            f"connection failed: {exc.os_error.strerror or exc.os_error}"
            if exc.os_error
            else "connection failed"
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "malformed response body"
    if isinstance(exc, ConnectionResetError | aiohttp.ClientOSError):
        return "connection reset"
    return f"{type(exc).__name__}: {exc}"


async def read_capped(response: aiohttp.ClientResponse, limit: int = MAX_BODY) -> bytes:
    return await response.content.read(limit)


async def timed_request(
    http: aiohttp.ClientSession, method: str, url: str, timeout: float, **kwargs: Any
) -> tuple[int, bytes, float]:
    """(status, body cut at MAX_BODY, seconds). Raises aiohttp/timeout errors for the caller to describe."""
    started = time.perf_counter()
    async with http.request(method, url, timeout=aiohttp.ClientTimeout(total=timeout), **kwargs) as response:
        body = await read_capped(response)
        return response.status, body, time.perf_counter() - started


def new_http_session(connections: int = 0) -> aiohttp.ClientSession:
    """The one keep-alive client shared by every probe of an engine (0 = no connection cap)."""
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300
    )
    return aiohttp.ClientSession(connector=connector, raise_for_status=False)


async def probe_endpoint_once(endpoint: EndpointSettings) -> ProbeResult:
    """One probe outside the engine (deploy verification, one-shot checks), with its own client."""
    adapter = create_adapter(endpoint)
    async with new_http_session() as http:
        return await adapter.probe(http)
