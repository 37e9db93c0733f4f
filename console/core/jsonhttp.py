"""JSON over the probe's HTTP client, for adapters that read a stack's own APIs (metadata, management,
schemas): the same caps, redirect rules and timeout as every probe request."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from mlops_console.core.adapters import HttpAnswer, excerpt, timed_request, too_large


class Deadline:
    """One probe's time budget, shared by the requests it makes (the engine cuts a probe off at its
    timeout + 1 s, and a probe cut off counts as failed, never as loading)."""

    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def __call__(self) -> float:
        """Seconds left; `timed_request` raises TimeoutError at once when none are."""
        return self._end - time.monotonic()


@dataclass(frozen=True)
class JsonAnswer:
    answer: HttpAnswer
    data: Any = None
    """The decoded body; None when `problem` says why there is none."""
    problem: str | None = None

    @property
    def status(self) -> int:
        return self.answer.status

    @property
    def ok(self) -> bool:
        return self.answer.status == 200 and self.problem is None


def decode(answer: HttpAnswer, route: str) -> JsonAnswer:
    """The answer's JSON, or what is wrong with it (redirect, status, size, syntax) naming `route`."""
    if answer.redirect is not None:
        return JsonAnswer(answer, problem=f"{route} {answer.redirect}")
    if answer.status != 200:
        return JsonAnswer(answer, problem=f"HTTP {answer.status} from {route}: {excerpt(answer.body)}")
    if answer.truncated:
        return JsonAnswer(answer, problem=f"{too_large()} from {route}")
    try:
        return JsonAnswer(answer, data=json.loads(answer.body))
    except ValueError:
        problem = f"{route} answered with something that is not JSON: {excerpt(answer.body, 120)}"
        return JsonAnswer(answer, problem=problem)
    except RecursionError:
        return JsonAnswer(answer, problem=f"{route} answered with JSON nested too deeply to read")


async def request_json(
    http: aiohttp.ClientSession,
    method: str,
    base: str,
    route: str,
    timeout: float,
    payload: bytes | None = None,
) -> JsonAnswer:
    """`method base+route` (with a JSON body if given), decoded. Raises the client's errors (refused,
    timed out...) for the caller to describe, like `timed_request`."""
    headers = {"Content-Type": "application/json"} if payload is not None else None
    answer = await timed_request(http, method, base + route, timeout, data=payload, headers=headers)
    return decode(answer, route)
