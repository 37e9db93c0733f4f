"""What real traffic (or our probes) says about the last minute: `latency_p95`, `error_ratio`,
`throughput_drop`, as static limits. A `[[rules]]` table that gives one of them another detector hands
it to the `detected` family.

While an endpoint does not answer, `down` says everything: these keep their last state instead of
paging for the same outage (inhibition), so they report nothing then.
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops_console.core import formatting
from mlops_console.core.conditions.base import Condition, Reading, evidence
from mlops_console.core.conditions.params import EndpointRules, RuleParams
from mlops_console.core.series import WindowStats


def _static(rules: EndpointRules, rule: str) -> bool:
    return rules.params(rule).detector == "threshold"


THROUGHPUT_WARMUP = 300.0
"""Seconds of throughput history before a drop can alert: never page on a cold baseline."""
MIN_REQUESTS_FOR_RATIO = 10
"""Requests in the window below which an error ratio is too noisy to alert on."""
MIN_LATENCY_SAMPLES = 5
"""Latency observations in the window below which a p95 may raise an alert but never clears one."""
MAD_SCALE = 1.4826

DEFAULTS = {
    "latency_p95": RuleParams(True, 1.0, 30.0, "warning", "latency p95 high", "s"),
    "error_ratio": RuleParams(True, 0.05, 30.0, "warning", "error ratio high", ""),
    "throughput_drop": RuleParams(True, 0.5, 60.0, "warning", "throughput collapsed", ""),
}


def conditions(reading: Reading, rules: EndpointRules) -> Iterator[Condition | None]:
    if reading.consecutive_failures:
        return
    name, stats, source = reading.endpoint, reading.window, reading.window_source
    latency = rules.params("latency_p95")
    p95 = stats.p95
    if _static(rules, "latency_p95"):
        yield rules.condition(
            "latency_p95",
            evidence(
                _latency_high(p95, latency),
                clear=p95 is not None and stats.samples >= MIN_LATENCY_SAMPLES,
            ),
            p95,
            f"{name} latency p95 {_ms(p95)} > {_ms(latency.threshold)} "
            f"for {formatting.duration(latency.for_)} ({source})",
        )
    if (source == "metrics" or reading.traffic_measured) and _static(rules, "error_ratio"):
        errors = rules.params("error_ratio")
        ratio, enough = stats.error_ratio, stats.requests >= MIN_REQUESTS_FOR_RATIO
        yield rules.condition(
            "error_ratio",
            evidence(_errors_high(stats, errors), clear=enough and ratio is not None),
            ratio,
            f"{name} error ratio {formatting.ratio(ratio, none='n/a')} > "
            f"{formatting.ratio(errors.threshold)} over the last minute ({stats.requests:.0f} requests)",
        )
    baseline = reading.throughput_baseline
    if baseline is not None and _static(rules, "throughput_drop"):
        drop = rules.params("throughput_drop")
        median, _, span = figures = baseline.figures()
        dropped, amount = throughput_dropped(reading.rps, figures, drop.threshold)
        yield rules.condition(
            "throughput_drop",
            evidence(dropped, clear=reading.rps is not None and span >= THROUGHPUT_WARMUP),
            amount,
            f"{name} throughput {formatting.rate(reading.rps or 0, unit=' req/s')} is "
            f"{formatting.ratio(amount, none='n/a')} below its median "
            f"{formatting.rate(median, unit=' req/s')}",
        )


def quiet(reading: Reading, rules: EndpointRules) -> bool:
    """No rule here can hold (see `conditions.quiet`): each value judged by a static limit is inside
    it (those judged by another detector are the `detected` family's)."""
    if reading.consecutive_failures:
        return True  # `down` speaks for the outage: these report nothing
    stats = reading.window
    if _static(rules, "latency_p95") and _latency_high(stats.p95, rules.params("latency_p95")):
        return False
    if (
        (reading.window_source == "metrics" or reading.traffic_measured)
        and _static(rules, "error_ratio")
        and _errors_high(stats, rules.params("error_ratio"))
    ):
        return False
    baseline, rps = reading.throughput_baseline, reading.rps
    if baseline is not None and _static(rules, "throughput_drop"):
        threshold = rules.params("throughput_drop").threshold
        # Most rounds of most endpoints: no median needed (it sorts half an hour of rates).
        if rps is None or baseline.clearly_above(rps, 1.0 - threshold):
            return True
        return not throughput_dropped(rps, baseline.figures(), threshold)[0]
    return True


def _latency_high(p95: float | None, params: RuleParams) -> bool:
    return p95 is not None and p95 > params.threshold


def _errors_high(stats: WindowStats, params: RuleParams) -> bool:
    ratio = stats.error_ratio
    return stats.requests >= MIN_REQUESTS_FOR_RATIO and ratio is not None and ratio > params.threshold


def throughput_dropped(
    rps: float | None, baseline: tuple[float, float, float] | None, threshold: float
) -> tuple[bool, float | None]:
    """A drop below (1 - threshold) of the median that also clears the baseline's own noise (MAD)."""
    if rps is None or baseline is None:
        return False, None
    median, mad, span = baseline
    if span < THROUGHPUT_WARMUP or median <= 0.2:
        return False, None
    drop = 1.0 - rps / median
    noisy = median - rps <= 3 * MAD_SCALE * mad
    return (drop >= threshold and not noisy), drop


def _ms(seconds: float | None) -> str:
    return formatting.latency(seconds, sep=" ", none="n/a")
