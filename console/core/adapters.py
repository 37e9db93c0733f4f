"""The adapter interface: how the engine talks to one kind of serving stack.

Adapters are plugins found through the `mlops_console.adapters` entry-point group; the first-party
ones (`mlflow`, `oip`, `bentoml`, `torchserve`, `generic`) register there exactly as a third-party
package would. A plugin that fails to load is reported and skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

import aiohttp
from yarl import URL

from mlops_console.config import EndpointSettings, MetricNames
from mlops_console.core.quality.records import PROBE_HEADER

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mlops_console.adapters"
MAX_BODY = 1 << 20
"""Bytes of a response body read at most; a huge body is cut, never buffered whole."""
MAX_REDIRECTS = 5
"""Same-origin redirects a probe follows; redirects to another origin are never followed."""
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ERROR_EXCERPT = 300

ProbeMethod = TypeVar("ProbeMethod", bound=Callable[..., Awaitable["ProbeResult"]])


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
    loading: bool = False
    """Not ok, but not down either: the server answers and is still loading its model. The engine
    shows it as `loading`, and neither fires nor resolves `down` for it."""


class Adapter(ABC):
    """One endpoint's probe logic. Instances are created once per endpoint and reused."""

    name: ClassVar[str]
    default_metrics: ClassVar[MetricNames | None] = None
    """The stack's own Prometheus names; None keeps `MetricNames`' defaults."""

    def __init__(self, endpoint: EndpointSettings) -> None:
        self.endpoint = endpoint

    def metric_names(self) -> MetricNames:
        """Which series to read from `metrics_url`: the adapter's defaults, with every key the
        endpoint's `metrics` table sets taken from there instead."""
        defaults = self.stack_metrics()
        if defaults is None:
            return self.endpoint.metrics
        made: tuple[MetricNames, MetricNames] | None = getattr(self, "_names_made", None)
        if made is not None and made[0] is defaults:
            return made[1]  # the same defaults: the same names (asked for every endpoint every round)
        chosen = self.endpoint.metrics
        names = defaults.model_copy(update={key: getattr(chosen, key) for key in chosen.model_fields_set})
        self._names_made = (defaults, names)
        return names

    def stack_metrics(self) -> MetricNames | None:
        """The defaults `metric_names` starts from; override where they depend on the endpoint (the
        served model's name in `match`) or on what the server said it is."""
        return self.default_metrics

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


def ends_within_timeout(probe: ProbeMethod) -> ProbeMethod:
    """Marks an adapter's `probe` that ends by itself within the endpoint's `timeout`: one
    `timed_request`, whose total timeout covers every hop and the body, and nothing else awaited.
    The engine then sets no timer of its own around it (see `ProbeSource`); a subclass that
    overrides `probe` is not marked, and guarded again. The mark names the method itself: a wrapper
    made with `functools.wraps` (a retry, say) copies the attributes, not the promise."""
    probe.ends_within_timeout = probe  # type: ignore[attr-defined]
    return probe


def ends_within_timeout_of(adapter: Adapter) -> bool:
    """`adapter`'s probe is marked with `ends_within_timeout` (the method its class uses, not one it
    inherited and overrode)."""
    probe = type(adapter).probe
    return getattr(probe, "ends_within_timeout", None) is probe


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


async def read_capped(response: aiohttp.ClientResponse, limit: int = MAX_BODY) -> tuple[bytes, bool]:
    """The body up to `limit` bytes, and whether it went on past them (the rest is never read).

    One `read(n)` returns only what happens to be buffered, so read until the end or the cap.
    """
    chunks: list[bytes] = []
    size = 0
    content = response.content
    while size <= limit:
        chunk = await content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if content.at_eof():  # the whole body is in: no read more to learn that
            break
    body = b"".join(chunks)
    return body[:limit], size > limit


def too_large(limit: int = MAX_BODY) -> str:
    return f"response too large (over {limit} bytes)"


@dataclass(frozen=True)
class HttpAnswer:
    """One request as a probe saw it, after the redirects it was allowed to follow."""

    status: int
    body: bytes
    """At most `MAX_BODY` bytes."""
    latency: float
    """Seconds from the first request to the end of the body, followed redirects included."""
    truncated: bool = False
    """The body went on past `MAX_BODY`: `body` holds its first bytes only."""
    redirect: str | None = None
    """Set when the answer is a redirect that was not followed: where it pointed and why not."""


_PARSED: dict[str, URL] = {}
_PARSED_MAX = 65_536


def parsed_url(url: str) -> str | URL:
    """`URL(url)`, parsed once per distinct URL: every probe of an endpoint asks for the same ones.
    A URL yarl cannot parse comes back as it is, for aiohttp to refuse as it always did."""
    found = _PARSED.get(url)
    if found is None:
        try:
            parsed = URL(url)
        except ValueError:
            return url
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        found = _PARSED[url] = parsed
    return found


def _origin(url: URL) -> tuple[str, str, int | None]:
    return url.scheme.lower(), (url.host or "").lower(), url.port


def _shown(url: URL) -> str:
    """A redirect target for messages: no credentials, query or fragment (they may hold tokens)."""
    return excerpt(str(url.with_user(None).with_query(None).with_fragment(None)), 160)


async def timed_request(
    http: aiohttp.ClientSession,
    method: str,
    url: str | URL,
    timeout: float,
    *,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    limit: int = MAX_BODY,
) -> HttpAnswer:
    """Send one request within `timeout` seconds, redirects included, and read its body up to `limit`.

    Redirects are followed only within the same origin (scheme, host and port), at most
    `MAX_REDIRECTS` times: an endpoint that sends the probe elsewhere is not the endpoint answering,
    so it must not count as up. Raises aiohttp/timeout errors for the caller to describe.
    """
    started = time.perf_counter()
    target = parsed_url(url) if isinstance(url, str) else url
    hops = 0
    while True:
        remaining = timeout - (time.perf_counter() - started)
        if remaining <= 0:
            raise TimeoutError
        async with http.request(
            method,
            target,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=remaining),
        ) as response:
            status, location = response.status, response.headers.get("Location")
            body, truncated = await read_capped(response, limit)
            latency = time.perf_counter() - started
            if status not in REDIRECT_STATUSES or not location:
                return HttpAnswer(status, body, latency, truncated)
            refused = None
            try:
                next_url = response.url.join(URL(location))
            except ValueError:
                refused = f"redirected to an invalid location (HTTP {status}, not followed)"
            else:
                if _origin(next_url) != _origin(response.url):
                    refused = (
                        f"redirected to {_shown(next_url)} (HTTP {status}; another origin, not followed)"
                    )
                elif hops >= MAX_REDIRECTS:
                    refused = (
                        f"redirected more than {MAX_REDIRECTS} times, last to {_shown(next_url)} "
                        f"(HTTP {status}, not followed)"
                    )
            if refused is not None:
                return HttpAnswer(status, body, latency, truncated, redirect=refused)
        # What browsers and aiohttp do: 303, and 301/302 after a POST, continue as a GET without body.
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, data = "GET", None
        target, hops = next_url, hops + 1


def new_http_session(connections: int = 0) -> aiohttp.ClientSession:
    """The one keep-alive client shared by every probe of an engine (0 = no connection cap)."""
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300
    )
    # Every probe says it is one, so a server logging its inferences can leave it out.
    return aiohttp.ClientSession(connector=connector, raise_for_status=False, headers={PROBE_HEADER: "1"})


async def probe_endpoint_once(endpoint: EndpointSettings) -> ProbeResult:
    """One probe outside the engine (deploy verification, one-shot checks), with its own client."""
    adapter = create_adapter(endpoint)
    async with new_http_session() as http:
        return await adapter.probe(http)
