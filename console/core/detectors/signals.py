"""Which rules watch which signal by default, with which detector, and how their verdicts read.

Each signal gets the static rule it always had (so nothing that paged before stops paging) and an
adaptive one that learns the endpoint's normal. Both are evaluated the same way live and in replay.
Values are one per poll: latency p95 in seconds, throughput in requests per second, the error ratio as
a share (with the request count behind it, where known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_console.core.detectors import create
from mlops_console.core.detectors.base import Verdict, shared_by_json
from mlops_console.core.detectors.evaluator import SignalEvaluator

SIGNALS = ("latency", "throughput", "error_rate")

LATENCY_ROBUST: dict[str, Any] = {
    "direction": "up",
    "offset": 0.001,
    "count_spread": 0.5,
    "rel_floor": 0.25,
    "persistence": (4, 5),
}
THROUGHPUT_ROBUST: dict[str, Any] = {
    "direction": "both",
    "offset": 0.05,
    "count_spread": 1.0,
    "up_kind": "surge",
    "down_kind": "drop",
    "long_window": 0,
}


@dataclass(frozen=True)
class RuleSpec:
    """One rule on one signal: its detector and parameters, `for` and severity."""

    rule: str
    signal: str
    detector: str
    params: Mapping[str, Any] = field(default_factory=dict)
    for_: float = 0.0
    severity: str = "warning"
    persistence: tuple[int, int] | None = None
    """k of n anomalous polls; None: the detector's default."""
    target: float | None = None
    """The latency SLO's target in seconds (`slow_share`: the share of requests slower than it)."""

    def evaluator(self) -> SignalEvaluator:
        return SignalEvaluator(create(self.detector, self.params), self.persistence)


RULE_SIGNALS: dict[str, str] = {
    "latency_p95": "latency",
    "latency_anomaly": "latency",
    "throughput_drop": "throughput",
    "throughput_anomaly": "throughput",
    "error_ratio": "error_rate",
    "error_ratio_anomaly": "error_rate",
    "slo_availability": "availability",
    "slo_latency": "slow_share",
}
"""The rules a detector can judge, and the signal each one watches."""
STATIC_RULES = ("latency_p95", "throughput_drop", "error_ratio")
"""Rules that have always been static limits: `threshold` is their default detector, and only for them."""

SIGNAL_DETECTORS: dict[str, dict[str, dict[str, Any]]] = {
    "latency": {"threshold": {"min_count": 5, "raise_below_min": True}, "robust": LATENCY_ROBUST},
    "throughput": {"threshold": {"mode": "drop"}, "robust": THROUGHPUT_ROBUST},
    "error_rate": {"threshold": {"min_count": 10}, "binomial": {}, "burn_rate": {}},
    "availability": {"burn_rate": {}},
    "slow_share": {"burn_rate": {}},
}
"""The detectors that make sense for each signal, with the parameters they start from there."""


def detectors_for(rule: str) -> tuple[str, ...]:
    """The detectors `rule` may use (a static limit only on the rules that have always had one)."""
    names = SIGNAL_DETECTORS[RULE_SIGNALS[rule]]
    return tuple(n for n in names if n != "threshold" or rule in STATIC_RULES)


def spec_for(
    rule: str,
    detector: str,
    params: Mapping[str, Any],
    *,
    threshold: float,
    for_: float,
    severity: str,
    persistence: tuple[int, int] | None = None,
    target: float | None = None,
) -> RuleSpec:
    """One rule's spec: the detector's defaults for the signal, the rule's threshold (static limits
    only), then `params` from the config."""
    signal = RULE_SIGNALS[rule]
    base = dict(SIGNAL_DETECTORS[signal][detector])
    if detector == "threshold":
        base["threshold"] = threshold
    merged = {k: tupled(v) for k, v in {**base, **params}.items()}
    return RuleSpec(rule, signal, detector, merged, for_, severity, persistence, target)


def tupled(value: Any) -> Any:
    """Lists (from TOML or JSON) as tuples, nested ones too, so specs compare equal however they were
    read (burn-rate `windows` from the config, or from a saved state)."""
    return tuple(tupled(v) for v in value) if isinstance(value, list | tuple) else value


DEFAULT_RULES: dict[str, tuple[RuleSpec, ...]] = {
    "latency": (
        RuleSpec(
            "latency_p95",
            "latency",
            "threshold",
            {"threshold": 1.0, "min_count": 5, "raise_below_min": True},
            for_=30.0,
        ),
        RuleSpec("latency_anomaly", "latency", "robust", LATENCY_ROBUST),
    ),
    "throughput": (
        RuleSpec("throughput_drop", "throughput", "threshold", {"threshold": 0.5, "mode": "drop"}, for_=60.0),
        RuleSpec("throughput_anomaly", "throughput", "robust", THROUGHPUT_ROBUST),
    ),
    "error_rate": (
        RuleSpec("error_ratio", "error_rate", "threshold", {"threshold": 0.05, "min_count": 10}, for_=30.0),
        RuleSpec("error_ratio_anomaly", "error_rate", "binomial"),
    ),
}


def format_value(signal: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "n/a" if value is None or math.isnan(value) else ("∞" if value > 0 else "-∞")
    if signal == "latency":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if signal == "throughput":
        return f"{value:.2f} req/s"
    return f"{value * 100:.2f}%"


def describe(signal: str, verdict: Verdict) -> str:
    """The verdict in one line: observed value, what was expected, and why it is (not) anomalous."""
    ev = verdict.evidence
    observed = format_value(signal, ev.get("value"))
    band = ""
    if verdict.expected is not None:
        low, high = verdict.expected
        band = (
            f"expected up to {format_value(signal, high)}"
            if low <= 0 or not math.isfinite(low)
            else f"expected {format_value(signal, low)} to {format_value(signal, high)}"
        )
    if ev.get("accepted"):
        before = format_value(signal, ev.get("previous_median"))
        after = format_value(signal, ev.get("new_median"))
        return f"{observed}: accepted as the new normal level (median {before} -> {after})"
    if verdict.anomalous is None:
        if "warming_up" in ev:
            return f"{observed}: learning the baseline ({ev['warming_up']} of {ev['of']} values)"
        return f"{observed}: not enough data to judge"
    parts = [observed]
    if verdict.kind:
        parts.append(verdict.kind.replace("_", " "))
    if band:
        parts.append(band)
    if "z" in ev:
        parts.append(f"usual {format_value(signal, ev['median'])}, robust z {ev.get('z', 0):.1f}")
    if "p_value" in ev:
        parts.append(
            f"{ev['errors']:.0f} errors in {ev['requests']:.0f} requests against a baseline of "
            f"{format_value('error_rate', ev['baseline'])} (p = {ev['p_value']:.2g})"
        )
    if "burn_rates" in ev:
        rates = ", ".join(f"{w} {r:.1f}x" for w, r in ev["burn_rates"].items() if r is not None)
        parts.append(f"burn rate {rates} of the {ev['objective']:.4g} objective")
        left = ev.get("budget_left")
        if isinstance(left, int | float):
            parts.append(f"{left * 100:.0f}% of the error budget left")
    if "threshold" in ev and "drop" not in ev:
        parts.append(f"threshold {format_value(signal, ev['threshold'])}")
    if "drop" in ev:
        parts.append(f"{ev['drop'] * 100:.0f}% below the median {format_value(signal, ev['median'])}")
    return ", ".join(parts)


def spec_to_state(spec: RuleSpec) -> dict[str, Any]:
    """A spec as JSON (the learnt state stored with it)."""
    return {
        "rule": spec.rule,
        "signal": spec.signal,
        "detector": spec.detector,
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.params.items()},
        "for": spec.for_,
        "severity": spec.severity,
        "persistence": list(spec.persistence) if spec.persistence else None,
        "target": spec.target,
    }


def spec_from_state(data: Mapping[str, Any]) -> RuleSpec:
    """`spec_to_state` read back; equal states give one shared spec (a restored fleet has a handful
    of specs for its 60,000 rules, and one each with its parameters took 9 MB)."""
    return shared_by_json(_spec_from_state, data)


def _spec_from_state(data: Mapping[str, Any]) -> RuleSpec:
    persistence = data.get("persistence")
    return RuleSpec(
        str(data["rule"]),
        str(data["signal"]),
        str(data["detector"]),
        {k: tupled(v) for k, v in dict(data["params"]).items()},
        float(data["for"]),
        str(data["severity"]),
        (int(persistence[0]), int(persistence[1])) if persistence else None,
        float(data["target"]) if data.get("target") is not None else None,
    )
