"""Prometheus' HTTP API as the console reads it: instant queries, ranges, active targets.

Every way an answer can be unusable becomes one `PromError` with a short reason a person can act on:
unreachable, slow (timed out), an HTTP error, `bad_data` or another `errorType`, a body that is not the
API's JSON, or a result cut short (`warnings`, a partial answer). Nothing here raises anything else.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import orjson

from mlops_console.core.adapters import HttpAnswer, describe_exception, excerpt, timed_request, too_large

if TYPE_CHECKING:
    from mlops_console.config import Settings

T = TypeVar("T")
MAX_ANSWER = 64 << 20
"""Bytes of one answer read at most: a fleet's answers are megabytes (a range slice of 10,000 endpoints
about 3 MB), far past a probe's cap; still bounded, so a runaway query cannot take all memory."""
Points = list[tuple[float, float]]
Matrix = list[tuple[Mapping[str, str], Points]]
"""A range answer: `(labels, [(time, value)...])` per series."""


class PromError(Exception):
    """Prometheus did not give a usable answer; the text says why (no secrets, bounded length)."""


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Mapping[str, str]
    value: float
    at: float


@dataclass(frozen=True, slots=True)
class Target:
    """One active scrape target (`/api/v1/targets`)."""

    labels: Mapping[str, str]
    scrape_url: str
    health: str
    """`up`, `down` or `unknown`."""


@dataclass(frozen=True)
class PromClient:
    url: str
    timeout: float
    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None

    def headers(self) -> dict[str, str]:
        if self.bearer_token:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.username is not None:
            pair = f"{self.username}:{self.password or ''}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    async def _fetch(self, http: aiohttp.ClientSession, path: str, params: Mapping[str, str]) -> HttpAnswer:
        url = f"{self.url.rstrip('/')}{path}" + (f"?{urlencode(params)}" if params else "")
        try:
            answer = await timed_request(
                http, "GET", url, self.timeout, headers=self.headers(), limit=MAX_ANSWER
            )
        except TimeoutError:
            # The one problem the reader can fix in the config: say which key, and its value now.
            raise PromError(
                f"unreachable: timed out after {self.timeout:g} s (a large fleet or a busy Prometheus "
                f"needs a longer [prometheus] timeout)"
            ) from None
        except Exception as exc:
            raise PromError(f"unreachable: {describe_exception(exc)}") from None
        if answer.redirect is not None:
            raise PromError(answer.redirect)
        if answer.truncated:
            raise PromError(too_large(MAX_ANSWER))
        return answer

    async def _get(self, http: aiohttp.ClientSession, path: str, params: Mapping[str, str]) -> Any:
        return _data(await self._fetch(http, path, params))

    async def query(self, http: aiohttp.ClientSession, promql: str) -> list[Sample]:
        """An instant vector; NaN and infinite values are left out (no data, not a figure)."""
        data = await self._get(http, "/api/v1/query", {"query": promql})
        return _vector(data)

    async def query_by(self, http: aiohttp.ClientSession, promql: str, label: str) -> dict[str, float]:
        """An instant vector as `{value of label: value}` (series without the label, NaN and infinite
        values left out); the same answer as `query`, without a label dict per series (10,000 series
        in a fleet's answer)."""
        answer = await self._fetch(http, "/api/v1/query", {"query": promql})
        if answer.status == 200:
            folded = _vector_by_fast(answer.body, label)
            if folded is not None:
                return folded
        data = _data(answer)
        if isinstance(data, dict) and data.get("resultType") == "vector":
            out: dict[str, float] = {}
            for series in _list(data.get("result")):
                metric = series.get("metric") if isinstance(series, dict) else None
                key = metric.get(label) if isinstance(metric, dict) else None
                if key is None:
                    continue
                at, value = _point(series.get("value"))
                if at is not None and value is not None:
                    out[str(key)] = value
            return out
        return {s.labels[label]: s.value for s in _vector(data) if label in s.labels}

    async def query_range(
        self, http: aiohttp.ClientSession, promql: str, start: float, end: float, step: float
    ) -> list[tuple[Mapping[str, str], list[tuple[float, float]]]]:
        """A range matrix: `(labels, [(time, value)...])` per series."""
        return _matrix(await self._get(http, "/api/v1/query_range", _range(promql, start, end, step)))

    async def query_range_folded(
        self,
        http: aiohttp.ClientSession,
        promql: str,
        start: float,
        end: float,
        step: float,
        fold: Callable[[Matrix], T],
    ) -> T:
        """`fold(query_range(...))`, with the answer's JSON parsed and folded on a worker thread: a
        fleet's range answer takes a second or more to parse, which on the event loop would hold up
        everything else on it. Only the body (bytes) goes to the thread and only `fold`'s result
        comes back; `fold` must read nothing the loop changes."""
        answer = await self._fetch(http, "/api/v1/query_range", _range(promql, start, end, step))
        return await asyncio.to_thread(lambda: fold(_matrix(_data(answer))))

    async def targets(self, http: aiohttp.ClientSession) -> list[Target]:
        data = await self._get(http, "/api/v1/targets", {"state": "active"})
        if not isinstance(data, dict):
            raise PromError("targets: not Prometheus' JSON API")
        out = []
        for item in _list(data.get("activeTargets")):
            if not isinstance(item, dict):
                continue
            labels = item.get("labels")
            out.append(
                Target(
                    labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
                    scrape_url=str(item.get("scrapeUrl", "")),
                    health=str(item.get("health", "unknown")),
                )
            )
        return out


def by_label(
    label: str, keys: frozenset[str]
) -> Callable[
    [list[tuple[Mapping[str, str], list[tuple[float, float]]]]], list[tuple[str, list[tuple[float, float]]]]
]:
    """A fold for `query_range_folded`: the points of the series whose `label` is one of `keys`."""
    return lambda answer: [(labels[label], points) for labels, points in answer if labels.get(label) in keys]


def _range(promql: str, start: float, end: float, step: float) -> dict[str, str]:
    return {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}


def _data(answer: HttpAnswer) -> Any:
    """The `data` of an API answer; PromError when there is none to use."""
    try:
        document = _loads(answer.body)
    except (ValueError, UnicodeDecodeError):
        raise PromError(f"HTTP {answer.status}, not Prometheus' JSON API") from None
    if not isinstance(document, dict):
        raise PromError(f"HTTP {answer.status}, not Prometheus' JSON API")
    if document.get("status") != "success":
        kind = document.get("errorType") or f"HTTP {answer.status}"
        raise PromError(f"{excerpt(str(kind), 40)}: {excerpt(str(document.get('error', '')), 200)}")
    if answer.status != 200:
        raise PromError(f"HTTP {answer.status}")
    warnings = document.get("warnings")
    if warnings:
        # Some of the data was not read (a remote store or a shard did not answer): partial.
        raise PromError(f"partial answer: {excerpt(str(warnings[0]), 200)}")
    return document.get("data")


def _loads(body: bytes) -> Any:
    """orjson: a fleet's answers are megabytes every round, which it parses several times faster. What
    it refuses (not UTF-8, a bare NaN) the standard parser decides, so both accept the same answers."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


_VECTOR_HEAD = '{"status":"success","data":{"resultType":"vector","result":['
_VECTOR_TAIL = "]}}"
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
"""A JSON number (a sample's timestamp, and its value: a string in the API)."""
_VALUE = rf"(?:{_NUMBER}|NaN|[-+]Inf)"
"""A sample's value as Prometheus writes it. `NaN` is read too, and left out as the full parse leaves it
out: the quantile of an endpoint without requests in the window is NaN, so one idle endpoint in a fleet
sent every latency answer through the text's patterns and then through the full parse as well."""


@functools.lru_cache(maxsize=16)
def _vector_patterns(label: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """(the whole result list, each series' label value, each series' value) of an instant vector
    whose every series carries `label` alone, written compactly as Prometheus writes it."""
    name = re.escape(json.dumps(label))
    series = rf'\{{"metric":\{{{name}:"[^"\\\x00-\x1f]*"\}},"value":\[{_NUMBER},"{_VALUE}"\]\}}'
    return (
        re.compile(rf"(?:{series}(?:,{series})*)?"),
        re.compile(rf'\{{"metric":\{{{name}:"([^"]*)"'),
        re.compile(rf',"({_VALUE})"\]\}}'),
    )


def _vector_by_fast(body: bytes, label: str) -> dict[str, float] | None:
    """`query_by`'s answer read straight from the text of the usual answer (a successful instant
    vector grouped by `label` alone, no warnings, no escapes), without the parsed
    document's 30,000 objects for 10,000 series, whose making (and the garbage collections they set
    off) was most of a round's parse. None for any other text: the full parse decides it, so both
    give the same figures for every answer."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    if not text.startswith(_VECTOR_HEAD) or not text.endswith(_VECTOR_TAIL) or "\\" in text:
        return None
    whole, keys, values = _vector_patterns(label)
    start, end = len(_VECTOR_HEAD), len(text) - len(_VECTOR_TAIL)
    if whole.fullmatch(text, start, end) is None:
        return None
    # The whole list matched the pattern of a series, and no string holds a quote or a backslash:
    # each pattern below finds exactly one match a series, in order.
    out: dict[str, float] = {}
    for key, value in zip(
        keys.findall(text, start, end), map(float, values.findall(text, start, end)), strict=True
    ):
        # NaN, an infinity or a decimal too large for a double: left out, as the full parse leaves it
        # out (a series left out neither replaces nor moves one of the same label value).
        if math.isfinite(value):
            out[key] = value
    return out


def _matrix(data: Any) -> list[tuple[Mapping[str, str], list[tuple[float, float]]]]:
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise PromError("query_range did not return a matrix")
    out: list[tuple[Mapping[str, str], list[tuple[float, float]]]] = []
    for series in _list(data.get("result")):
        labels = _labels(series)
        points = []
        for point in _list(series.get("values") if isinstance(series, dict) else None):
            at, value = _point(point)
            if at is not None and value is not None:
                points.append((at, value))
        out.append((labels, points))
    return out


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _labels(series: Any) -> dict[str, str]:
    metric = series.get("metric") if isinstance(series, dict) else None
    return {str(k): str(v) for k, v in metric.items()} if isinstance(metric, dict) else {}


def _point(point: Any) -> tuple[float | None, float | None]:
    if not isinstance(point, list) or len(point) != 2:
        return None, None
    try:
        at, value = float(point[0]), float(point[1])
    except (TypeError, ValueError):
        return None, None
    return at, (value if math.isfinite(value) else None)


def _vector(data: Any) -> list[Sample]:
    if not isinstance(data, dict):
        raise PromError("not Prometheus' JSON API (no data)")
    kind = data.get("resultType")
    if kind == "scalar":
        at, value = _point(data.get("result"))
        return [Sample({}, value, at)] if at is not None and value is not None else []
    if kind != "vector":
        raise PromError(f"expected an instant vector, got {excerpt(str(kind), 20)}")
    out = []
    for series in _list(data.get("result")):
        at, value = _point(series.get("value") if isinstance(series, dict) else None)
        if at is not None and value is not None:
            out.append(Sample(_labels(series), value, at))
    return out


def client_for(settings: Settings) -> PromClient:
    """The client of `[prometheus]` (which must be set)."""
    prom = settings.prometheus
    assert prom is not None
    return PromClient(prom.url, prom.timeout, prom.bearer_token, prom.username, prom.password)
