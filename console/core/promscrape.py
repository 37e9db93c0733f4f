"""Scrape a Prometheus `/metrics` page and reduce it to requests, errors and a latency histogram."""

from __future__ import annotations

import math
import time

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from mlops_console.config import MetricNames
from mlops_console.core.adapters import describe_exception, timed_request, too_large
from mlops_console.core.series import MetricsSample


class MetricsError(Exception):
    pass


def _matches(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def _is_error(status: str) -> bool:
    return not status[:1].isdigit() or int(status[:1]) >= 4


def reduce_exposition(text: str, names: MetricNames, at: float) -> MetricsSample:
    """Sum the request counter (total and non-2xx/3xx) and the latency histogram over matching labels."""
    requests = errors = 0.0
    buckets: dict[float, float] = {}
    found_requests = False
    try:
        for family in text_string_to_metric_families(text):
            # Match sample names: the parser strips `_total` from counter family names, not samples.
            for sample in family.samples:
                if not _matches(sample.labels, names.match):
                    continue
                if sample.name == names.requests:
                    found_requests = True
                    requests += sample.value
                    if _is_error(sample.labels.get(names.status_label, "200")):
                        errors += sample.value
                elif sample.name == f"{names.latency}_bucket":
                    bound = float(sample.labels.get("le", "inf"))
                    buckets[bound] = buckets.get(bound, 0.0) + sample.value
    except (ValueError, TypeError) as exc:
        raise MetricsError(f"unparseable metrics: {exc}") from None
    if not found_requests:
        raise MetricsError(f"no {names.requests} series matching {names.match}")
    ordered = tuple(sorted(buckets.items(), key=lambda kv: kv[0]))
    if ordered and not math.isinf(ordered[-1][0]):
        ordered = (*ordered, (math.inf, ordered[-1][1]))
    return MetricsSample(at=at, requests=requests, errors=errors, buckets=ordered)


async def scrape(http: aiohttp.ClientSession, url: str, names: MetricNames, timeout: float) -> MetricsSample:
    try:
        answer = await timed_request(http, "GET", url, timeout)
    except Exception as exc:
        raise MetricsError(f"metrics scrape failed: {describe_exception(exc)}") from None
    if answer.redirect is not None:
        raise MetricsError(f"metrics scrape failed: {answer.redirect}")
    if answer.status != 200:
        raise MetricsError(f"metrics scrape failed: HTTP {answer.status}")
    if answer.truncated:  # a cut page would silently drop series and undercount
        raise MetricsError(f"metrics scrape failed: {too_large()}")
    return reduce_exposition(answer.body.decode("utf-8", "replace"), names, time.time())
