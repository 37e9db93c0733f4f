"""Adapter for any HTTP endpoint: GET `url` + `path`, expect a status and optionally a text in the body."""

from __future__ import annotations

import aiohttp

from mlops_console.config import EndpointSettings
from mlops_console.core.adapters import (
    MAX_BODY,
    Adapter,
    ProbeResult,
    describe_exception,
    ends_within_timeout,
    excerpt,
    parsed_url,
    timed_request,
    too_large,
)


class GenericAdapter(Adapter):
    name = "generic"

    def __init__(self, endpoint: EndpointSettings) -> None:
        super().__init__(endpoint)
        self._path = endpoint.path if endpoint.path.startswith("/") else "/" + endpoint.path
        self._url = parsed_url(endpoint.url + self._path)  # built once, not on every probe

    @ends_within_timeout  # one timed_request: the engine's guard timer would only add a timer per probe
    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        endpoint, path = self.endpoint, self._path
        try:
            answer = await timed_request(http, "GET", self._url, endpoint.timeout)
        except Exception as exc:
            return ProbeResult(ok=False, error=describe_exception(exc))
        result = ProbeResult(ok=False, latency=answer.latency, status=answer.status)
        if answer.status != endpoint.expect_status:
            result.error = (
                f"{path} {answer.redirect}"
                if answer.redirect is not None
                else f"HTTP {answer.status} (expected {endpoint.expect_status}): {excerpt(answer.body)}"
            )
        elif endpoint.expect_body and endpoint.expect_body not in answer.body.decode("utf-8", "replace"):
            result.error = (
                f"{too_large()} and its first {MAX_BODY} bytes lack {endpoint.expect_body!r}"
                if answer.truncated
                else f"body lacks {endpoint.expect_body!r}: {excerpt(answer.body)}"
            )
        else:
            result.ok = True
        return result
