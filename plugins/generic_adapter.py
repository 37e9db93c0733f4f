"""Adapter for any HTTP endpoint: GET `url` + `path`, expect a status and optionally a text in the body."""

from __future__ import annotations

import aiohttp

from console.core.adapters import Adapter, ProbeResult, describe_exception, excerpt, timed_request


class GenericAdapter(Adapter):
    name = "generic"

    async def probe(self, http: aiohttp.ClientSession) -> ProbeResult:
        endpoint = self.endpoint
        path = endpoint.path if endpoint.path.startswith("/") else "/" + endpoint.path
        try:
            status, body, latency = await timed_request(http, "GET", endpoint.url + path, endpoint.timeout)
        except Exception as exc:
            return ProbeResult(ok=False, error=describe_exception(exc))
        if status != endpoint.expect_status:
            return ProbeResult(
                ok=False,
                latency=latency,
                status=status,
                error=f"HTTP {status} (expected {endpoint.expect_status}): {excerpt(body)}",
            )
        if endpoint.expect_body and endpoint.expect_body not in body.decode("utf-8", "replace"):
            return ProbeResult(
                ok=False,
                latency=latency,
                status=status,
                error=f"body lacks {endpoint.expect_body!r}: {excerpt(body)}",
            )
        return ProbeResult(ok=True, latency=latency, status=status)
