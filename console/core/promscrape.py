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


def _counter(name: str | None) -> str | None:
    """A counter's name without `_total`: the parser adds the suffix to samples that lack it (Triton's
    `nv_inference_request_success`), and a config may name a counter either way."""
    return name.removesuffix("_total") if name else None


def reduce_exposition(text: str, names: MetricNames, at: float) -> MetricsSample:
    """Sum the request counter (total and non-2xx/3xx) and the latency histogram over matching labels.

    With `names.failures`, `requests` counts successes and `failures` the failed requests: the total
    is their sum and the errors are the failures (stacks without a status label: MLServer, Triton).
    """
    requests = errors = 0.0
    requests_name, failures_name = _counter(names.requests), _counter(names.failures)
    latency_bucket = f"{names.latency}_bucket"
    latency_match = names.match if names.latency_match is None else names.latency_match
    buckets: dict[float, float] = {}
    found_requests = False
    declared = counted = False
    try:
        for family in text_string_to_metric_families(text):
            if family.name == requests_name and not family.samples:
                declared = True
            # Match sample names: the parser strips `_total` from counter family names, not samples.
            for sample in family.samples:
                if sample.name == latency_bucket:
                    if _matches(sample.labels, latency_match):
                        bound = float(sample.labels.get("le", "inf"))
                        buckets[bound] = buckets.get(bound, 0.0) + sample.value
                    continue
                counter = _counter(sample.name)
                counted = counted or counter == requests_name
                if not _matches(sample.labels, names.match):
                    continue
                if counter == requests_name:
                    found_requests = True
                    requests += sample.value
                    if names.failures is None and _is_error(sample.labels.get(names.status_label, "200")):
                        errors += sample.value
                elif counter == failures_name:
                    found_requests = True
                    requests += sample.value
                    errors += sample.value
    except (ValueError, TypeError) as exc:
        raise MetricsError(f"unparseable metrics: {exc}") from None
    # A counter declared without any sample is one nothing has counted yet (prometheus_client shows
    # labelled counters so until their first use): zero requests, not a missing series.
    if not found_requests and not (declared and not counted):
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
