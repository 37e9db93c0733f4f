"""What a detector-judged alert stores about why it fired, and that evidence in one line (`alerts
show`, the alert timeline)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlops_console.core.detectors.evaluator import Judgement
from mlops_console.core.detectors.signals import RuleSpec, format_value


def evidence_of(spec: RuleSpec, judgement: Judgement) -> dict[str, Any]:
    """What the alert stores about why it fired: JSON-able, no infinities."""
    verdict = judgement.verdict
    expected = None
    if verdict.expected is not None:
        expected = [v if math.isfinite(v) else None for v in verdict.expected]
    finite: dict[str, Any] = _finite(
        {
            "detector": spec.detector,
            "signal": spec.signal,
            "observed": verdict.evidence.get("value"),
            "expected": expected,
            "score": verdict.score,
            "kind": verdict.kind,
            "anomalous_recent": judgement.anomalous_recent,
            **({"target": spec.target} if spec.target is not None else {}),
            "baseline": {k: v for k, v in verdict.evidence.items() if k != "value"},
        }
    )
    return finite


def explain_evidence(evidence: Mapping[str, Any]) -> str:
    """A stored alert's evidence in one line: detector, observed value against its band, score."""
    signal = str(evidence.get("signal") or "")
    value = format_value(signal, evidence.get("observed"))
    low, high = [*(evidence.get("expected") or []), None, None][:2]
    if high is None and low is None:
        band = "no expected band"
    elif not low:
        band = f"expected up to {format_value(signal, high)}"
    elif high is None:
        band = f"expected at least {format_value(signal, low)}"
    else:
        band = f"expected {format_value(signal, low)} to {format_value(signal, high)}"
    score = evidence.get("score")
    scored = f", score {score:.1f}" if isinstance(score, int | float) else ""
    baseline = evidence.get("baseline") or {}
    usual = ""
    if isinstance(baseline, Mapping) and isinstance(baseline.get("median"), int | float):
        usual = f", usual {format_value(signal, baseline['median'])}"
    burning = ""
    if isinstance(baseline, Mapping) and isinstance(baseline.get("burn_rates"), Mapping):
        rates = [f"{w} {r:.1f}x" for w, r in baseline["burn_rates"].items() if isinstance(r, int | float)]
        burning = f", burn rate {', '.join(rates)}" if rates else ""
        left = baseline.get("budget_left")
        if isinstance(left, int | float):
            burning += f", {left * 100:.0f}% of the error budget left"
    return f"{evidence.get('detector')} detector: observed {value}, {band}{usual}{scored}{burning}"


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
