"""The rule families' exact contract: thresholds, `>=` against `>`, when evidence clears, and what a
condition says (value, threshold, severity, `for`, the text that reaches the page).

A rule that fires one failure early pages falsely; one that never clears keeps an incident open; one
that clears on too little evidence resolves an outage that is still going on. Each boundary is pinned
on both sides.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.conditions import Condition, Reading, evaluate, params_for
from mlops_console.core.conditions.traffic import MAD_SCALE, THROUGHPUT_WARMUP, throughput_dropped
from mlops_console.core.series import ThroughputBaseline, WindowStats

ENDPOINTS = [{"name": name, "url": "http://127.0.0.1:9"} for name in ("ep-a", "ep-b", "prod")]


def settings(*rules: dict[str, Any]) -> Settings:
    return parse_settings({"store": {"path": "/tmp/unused.db"}, "endpoints": ENDPOINTS, "rules": list(rules)})


DEFAULT = settings()


def reading(**changes: Any) -> Reading:
    base = Reading(
        endpoint="ep-a",
        model="iris",
        now=1_000_000.0,
        interval=2.0,
        health="up",
        probes=10,
        consecutive_failures=0,
        consecutive_invalid=0,
        last_error=None,
        served_version="3",
        expected_version="3",
        alias="production",
        window=WindowStats(),
        window_source="probe",
        traffic_measured=False,
        rps=None,
        throughput_baseline=None,
    )
    return replace(base, **changes)


def rule(name: str, r: Reading, s: Settings = DEFAULT) -> Condition | None:
    found = [c for c in evaluate(s, r) if c.rule == name]
    assert len(found) <= 1
    return found[0] if found else None


def state(name: str, r: Reading, s: Settings = DEFAULT) -> bool | str | None:
    c = rule(name, r, s)
    return "absent" if c is None else c.active


# -- down ----------------------------------------------------------------------------------------------
def test_down_fires_at_the_threshold_of_consecutive_failures_not_before() -> None:
    assert state("down", reading(health="down", consecutive_failures=1)) is None
    assert state("down", reading(health="down", consecutive_failures=2)) is True
    s = settings({"rule": "down", "threshold": 3})
    assert state("down", reading(health="down", consecutive_failures=2), s) is None
    assert state("down", reading(health="down", consecutive_failures=3), s) is True


def test_down_clears_only_on_an_answer() -> None:
    assert state("down", reading()) is False
    assert state("down", reading(probes=0)) is None, "no probe yet is no evidence of health"
    assert state("down", reading(health="loading")) is None, "a server loading its model has not answered"


def test_down_condition_carries_count_threshold_severity_and_the_last_error() -> None:
    c = rule("down", reading(health="down", consecutive_failures=3, last_error="connection refused"))
    assert c == Condition(
        "down",
        "ep-a",
        True,
        "critical",
        0.0,
        3,
        2,
        "ep-a failed 3 consecutive probes (threshold 2) (last error: connection refused)",
        "iris",
        "3",
        2.0,
    )
    quiet = rule("down", reading(health="down", consecutive_failures=2))
    assert quiet is not None and quiet.detail == "ep-a failed 2 consecutive probes (threshold 2)"


# -- invalid_prediction ----------------------------------------------------------------------------------
def test_invalid_prediction_fires_at_the_threshold_and_clears_only_on_a_valid_answer() -> None:
    assert state("invalid_prediction", reading(consecutive_invalid=1)) is None
    assert state("invalid_prediction", reading(consecutive_invalid=0)) is False
    assert state("invalid_prediction", reading(consecutive_invalid=0, probes=0)) is None
    c = rule("invalid_prediction", reading(consecutive_invalid=2, last_error="not a list"))
    assert c is not None
    assert (c.active, c.value, c.threshold, c.severity) == (True, 2, 2, "critical")
    assert c.detail == "ep-a returned 2 invalid prediction answers in a row (last error: not a list)"
    below = rule("invalid_prediction", reading(consecutive_invalid=1))
    assert below is not None and below.detail == "ep-a returned 1 invalid prediction answers in a row"


# -- latency_p95 -------------------------------------------------------------------------------------------
def window(**values: Any) -> WindowStats:
    return WindowStats(**values)


def test_latency_fires_strictly_above_its_threshold() -> None:
    at = reading(window=window(p95=1.0, samples=5))
    assert state("latency_p95", at) is False, "exactly at the threshold is within it"
    above = rule("latency_p95", reading(window=window(p95=1.25, samples=5)))
    assert above is not None
    assert (above.active, above.value, above.threshold, above.for_, above.severity) == (
        True,
        1.25,
        1.0,
        30.0,
        "warning",
    )
    assert above.detail == "ep-a latency p95 1250 ms > 1000 ms for 30s (probe)"


def test_latency_fires_on_few_samples_but_clears_only_on_five() -> None:
    assert state("latency_p95", reading(window=window(p95=2.0, samples=1))) is True
    assert state("latency_p95", reading(window=window(p95=0.1, samples=4))) is None
    assert state("latency_p95", reading(window=window(p95=0.1, samples=5))) is False
    assert state("latency_p95", reading(window=window(p95=None, samples=9))) is None


def test_traffic_rules_say_nothing_while_the_endpoint_fails() -> None:
    failing = reading(
        health="down",
        consecutive_failures=1,
        window=window(p95=5.0, samples=9, error_ratio=0.9, requests=100),
        window_source="metrics",
        rps=0.0,
        throughput_baseline=ThroughputBaseline((10.0,) * 3, 600.0),
    )
    rules = {c.rule for c in evaluate(DEFAULT, failing)}
    assert not rules & {"latency_p95", "error_ratio", "throughput_drop"}


# -- error_ratio ----------------------------------------------------------------------------------------
def test_error_ratio_fires_strictly_above_its_threshold_with_ten_requests() -> None:
    def measured(ratio: float | None, requests: float) -> Reading:
        return reading(window=window(error_ratio=ratio, requests=requests), window_source="metrics")

    assert state("error_ratio", measured(0.05, 10)) is False
    assert state("error_ratio", measured(0.06, 10)) is True
    assert state("error_ratio", measured(0.9, 9)) is None, "nine requests are too few either way"
    assert state("error_ratio", measured(None, 50)) is None
    c = rule("error_ratio", measured(0.25, 40))
    assert c is not None
    assert (c.value, c.threshold, c.severity, c.for_) == (0.25, 0.05, "warning", 30.0)
    assert c.detail == "ep-a error ratio 25% > 5.0% over the last minute (40 requests)"


def test_error_ratio_only_for_real_traffic() -> None:
    probed = reading(window=window(error_ratio=0.5, requests=50))
    assert state("error_ratio", probed) == "absent", "our own probes are not the endpoint's traffic"
    measured = replace(probed, traffic_measured=True)
    assert state("error_ratio", measured) is True


# -- throughput_drop ------------------------------------------------------------------------------------
def test_throughput_drop_by_hand_at_its_edges() -> None:
    assert throughput_dropped(5.0, (10.0, 0.0, THROUGHPUT_WARMUP), 0.5) == (True, 0.5)
    dropped, amount = throughput_dropped(5.01, (10.0, 0.0, THROUGHPUT_WARMUP), 0.5)
    assert dropped is False and amount == pytest.approx(0.499)
    assert throughput_dropped(0.0, (10.0, 0.0, THROUGHPUT_WARMUP - 0.1), 0.5) == (False, None), "cold"
    assert throughput_dropped(0.0, (0.2, 0.0, 600.0), 0.5) == (False, None), "too little traffic to judge"
    assert throughput_dropped(0.0, (0.25, 0.0, 600.0), 0.5) == (True, 1.0)
    assert throughput_dropped(None, (10.0, 0.0, 600.0), 0.5) == (False, None)
    assert throughput_dropped(1.0, None, 0.5) == (False, None)


def test_throughput_drop_within_three_scaled_mads_is_noise() -> None:
    noise = 3 * MAD_SCALE * 1.0  # 4.4478 req/s around a median of 10
    assert throughput_dropped(10.0 - 4.5, (10.0, 1.0, 600.0), 0.4)[0] is True
    assert throughput_dropped(10.0 - 4.4, (10.0, 1.0, 600.0), 0.4)[0] is False
    assert 4.4 < noise < 4.5
    # No spread at all: a rate equal to the median is no drop, even with a threshold of 0.
    assert throughput_dropped(10.0, (10.0, 0.0, 600.0), 0.0) == (False, 0.0)


def test_throughput_drop_condition_clears_only_on_a_warm_baseline() -> None:
    warm = reading(rps=9.0, throughput_baseline=ThroughputBaseline((10.0,) * 3, THROUGHPUT_WARMUP))
    assert state("throughput_drop", warm) is False
    assert (
        state("throughput_drop", replace(warm, throughput_baseline=ThroughputBaseline((10.0,) * 3, 299.0)))
        is None
    )
    assert state("throughput_drop", replace(warm, rps=None)) is None
    assert state("throughput_drop", replace(warm, throughput_baseline=None)) == "absent"
    c = rule("throughput_drop", replace(warm, rps=2.0))
    assert c is not None
    assert (c.active, c.value, c.threshold, c.for_) == (True, 0.8, 0.5, 60.0)
    assert c.detail == "ep-a throughput 2.0 req/s is 80% below its median 10.0 req/s"


# -- version_mismatch and deploy_not_converged ------------------------------------------------------------
def test_version_mismatch_needs_both_versions() -> None:
    c = rule("version_mismatch", reading(served_version="2", expected_version="3"))
    assert c is not None
    assert (c.active, c.severity, c.for_, c.version) == (True, "warning", 120.0, "2")
    assert c.detail == "ep-a serves iris v2 but production points to v3"
    assert state("version_mismatch", reading()) is False
    assert state("version_mismatch", reading(served_version=None)) is None
    assert state("version_mismatch", reading(expected_version=None)) is None
    unnamed = rule("version_mismatch", reading(served_version="2", alias=None))
    assert unnamed is not None and unnamed.detail == "ep-a serves iris v2 but the alias points to v3"


@pytest.mark.parametrize(
    ("health", "served", "expected"),
    [
        ("up", "3", False),
        ("degraded", "3", False),
        ("up", "2", True),
        ("down", "3", True),
        ("loading", "3", True),
        ("unknown", "3", None),
    ],
)
def test_deploy_not_converged_resolves_once_healthy_on_the_expected_version(
    health: str, served: str, expected: bool | None
) -> None:
    r = reading(health=health, served_version=served, adopted=(("deploy_not_converged", "wine"),))
    c = rule("deploy_not_converged", r)
    assert c is not None
    assert c == Condition(
        "deploy_not_converged",
        "ep-a",
        expected,
        "critical",
        0.0,
        None,
        None,
        "ep-a is healthy and serves the expected version again",
        "wine",
        interval=2.0,
    )


def test_other_adopted_rules_are_left_to_their_own_family() -> None:
    r = reading(adopted=(("latency_p95", "iris"),))
    assert [c.rule for c in evaluate(DEFAULT, r)].count("latency_p95") == 1, "only its own family's"


# -- [[rules]] overrides -----------------------------------------------------------------------------------
def test_overrides_apply_in_file_order_to_matching_endpoints_only() -> None:
    s = settings(
        {"rule": "latency_p95", "endpoint": "ep-*", "threshold": 0.5, "for": "10s", "severity": "critical"},
        {"rule": "latency_p95", "endpoint": "ep-a", "threshold": 0.25},
        {"rule": "error_ratio", "endpoint": "*", "threshold": 0.5},
    )
    a = params_for(s, "latency_p95", "ep-a")
    assert (a.threshold, a.for_, a.severity, a.enabled) == (0.25, 10.0, "critical", True)
    b = params_for(s, "latency_p95", "ep-b")
    assert (b.threshold, b.for_, b.severity) == (0.5, 10.0, "critical")
    other = params_for(s, "latency_p95", "prod")
    assert (other.threshold, other.for_, other.severity) == (1.0, 30.0, "warning")
    c = rule("latency_p95", reading(window=window(p95=0.3, samples=5)), s)
    assert c is not None and (c.active, c.threshold, c.severity, c.for_) == (True, 0.25, "critical", 10.0)


def test_a_disabled_rule_yields_no_condition_and_can_be_enabled_again() -> None:
    off = settings({"rule": "down", "enabled": False})
    assert state("down", reading(health="down", consecutive_failures=5), off) == "absent"
    back = settings({"rule": "down", "enabled": False}, {"rule": "down", "endpoint": "ep-a", "enabled": True})
    assert state("down", reading(health="down", consecutive_failures=5), back) is True


def test_detector_overrides_keep_or_reset_their_parameters() -> None:
    s = settings(
        {"rule": "latency_p95", "detector": "robust", "params": {"z": 4.0}},
        {"rule": "latency_p95", "endpoint": "ep-a", "params": {"warmup": 60}},
        {"rule": "latency_p95", "endpoint": "ep-b", "detector": "threshold"},
        {"rule": "latency_p95", "every": "2m", "persistence": [2, 3]},
    )
    a = params_for(s, "latency_p95", "ep-a")
    assert (a.detector, dict(a.detector_params)) == ("robust", {"z": 4.0, "warmup": 60})
    assert (a.every, a.persistence) == (120.0, (2, 3))
    b = params_for(s, "latency_p95", "ep-b")
    assert (b.detector, dict(b.detector_params)) == ("threshold", {}), (
        "another detector's params mean nothing"
    )
    same = params_for(settings({"rule": "latency_p95", "detector": "threshold"}), "latency_p95", "x")
    assert (same.detector, same.every, same.persistence) == ("threshold", 60.0, None)


def test_details_say_n_a_where_a_figure_is_missing() -> None:
    latency = rule("latency_p95", reading(window=window(p95=None, samples=0)))
    assert latency is not None and latency.detail == "ep-a latency p95 n/a > 1000 ms for 30s (probe)"
    ratio = rule("error_ratio", reading(window=window(error_ratio=None, requests=0), window_source="metrics"))
    assert ratio is not None
    assert ratio.detail == "ep-a error ratio n/a > 5.0% over the last minute (0 requests)"
    silent = rule(
        "throughput_drop", reading(rps=None, throughput_baseline=ThroughputBaseline((10.0,) * 3, 600.0))
    )
    assert silent is not None
    assert silent.detail == "ep-a throughput 0.0 req/s is n/a below its median 10.0 req/s"
