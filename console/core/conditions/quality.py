"""Is the model right, not just up: drift of its inputs and predictions, inputs that break its
signature, a model stuck on one answer, live performance below the training run's.

Every condition reads the endpoint's last quality evaluation (`Reading.quality`, evaluated every
`drift.evaluate_every` over the last `drift.window` of its inference log). The sample-size guards live
in the evaluation: a feature without enough reference or current rows has no verdict, and a rule with
no verdict is unknown, so a quiet endpoint neither pages nor resolves on noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from mlops_console.core.conditions.base import Condition, Reading, evidence
from mlops_console.core.conditions.params import EndpointRules, RuleParams
from mlops_console.core.quality.snapshot import QualitySnapshot

MIN_SCHEMA_ROWS = 20
"""Logged rows a window needs before `input_schema` says anything either way."""

DEFAULTS = {
    "feature_drift": RuleParams(True, 0.5, 0.0, "warning", "input features drifted", " of features"),
    "prediction_drift": RuleParams(True, 0, 0.0, "warning", "predictions drifted", ""),
    "input_schema": RuleParams(True, 0.05, 0.0, "warning", "inputs break the model signature", " of rows"),
    "stuck_prediction": RuleParams(True, 50, 0.0, "critical", "model stuck on one prediction", " rows"),
    "performance_drop": RuleParams(True, 0.1, 0.0, "warning", "live performance dropped", ""),
}


def _who(reading: Reading, quality: QualitySnapshot) -> str:
    model = quality.model or reading.model
    version = f" v{quality.version}" if quality.version else ""
    return f"{reading.endpoint} ({model}{version})" if model else reading.endpoint


def _window(quality: QualitySnapshot) -> str:
    seconds = quality.window
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _scores(quality: QualitySnapshot, names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        feature = quality.feature(name)
        if feature is not None:
            psi = f", PSI {feature.psi:.3g}" if feature.psi is not None else ""
            score = f"{feature.score:.3g}" if feature.score is not None else "-"
            parts.append(f"{name} {score}{psi}")
    return "; ".join(parts)


def _sizes(quality: QualitySnapshot) -> str:
    judged = [f for f in quality.features if f.verdict in ("drift", "ok")]
    reference = max((f.reference_n for f in judged), default=0)
    current = max((f.current_n for f in judged), default=0)
    window = _window(quality)
    return f"{current} rows in the last {window} against {reference} reference rows ({quality.reference})"


def conditions(reading: Reading, rules: EndpointRules) -> Iterator[Condition | None]:
    quality = reading.quality
    if quality is None:
        return
    who = _who(reading, quality)

    def condition(rule: str, active: bool | None, value: float | None, detail: str) -> Condition | None:
        built = rules.condition(rule, active, value, detail)
        if built is None:
            return None
        # Quality is judged every `evaluate_every`, not every probe: an adopted alert waits for that.
        return replace(built, version=quality.version or built.version, interval=reading.quality_interval)

    share_needed = rules.params("feature_drift").threshold
    judged = quality.drift_share is not None
    drifting = judged and bool(quality.drifted) and (quality.drift_share or 0.0) >= share_needed
    features = sum(1 for f in quality.features if f.verdict in ("drift", "ok"))
    yield condition(
        "feature_drift",
        evidence(drifting, clear=judged),
        quality.drift_share,
        (
            f"{who}: {len(quality.drifted)} of {features} features drift "
            f"(share {quality.drift_share or 0:.2f}, threshold {share_needed:.2f}): "
            f"{_scores(quality, quality.drifted)}; {_sizes(quality)}"
        )
        if quality.drifted
        else f"{who}: no feature drifts; {_sizes(quality)}",
    )

    predicted = quality.prediction_drift
    moved = tuple(p.name for p in quality.predictions if p.drifted)
    yield condition(
        "prediction_drift",
        evidence(bool(predicted), clear=predicted is False),
        next((p.score for p in quality.predictions if p.score is not None), None),
        f"{who}: the prediction's distribution moved ({_scores(quality, moved)}); {_sizes(quality)}"
        if moved
        else f"{who}: the prediction's distribution holds",
    )

    if quality.input_rows or quality.signature:
        rows = quality.input_rows
        share = quality.broken_rows / rows if rows else None
        limit = rules.params("input_schema").threshold
        enough = rows >= MIN_SCHEMA_ROWS
        yield condition(
            "input_schema",
            evidence(enough and share is not None and share > limit, clear=enough),
            share,
            f"{who}: {quality.broken_rows} of {rows} rows in the last {_window(quality)} break the input "
            f"signature ({(share or 0):.1%} > {limit:.1%}): {quality.input_problems} "
            f"[signature: {quality.signature}]",
        )

    yield condition(
        "stuck_prediction",
        evidence(quality.stuck, clear=quality.prediction_rows > 0),
        float(quality.stuck_run),
        f"{who}: the same prediction {quality.stuck_prediction} for the last {quality.stuck_run} rows "
        "while the inputs varied",
    )

    if quality.performance:
        dropped = quality.performance_dropped
        shown = "; ".join(
            f"{name} {live:.3g} (training {base:.3g})" if base is not None else f"{name} {live:.3g}"
            for name, live, base in quality.performance
        )
        yield condition(
            "performance_drop",
            evidence(bool(dropped), clear=quality.performance_enough),
            None,
            f"{who}: {', '.join(dropped) or 'no metric'} below the training run by more than "
            f"{rules.params('performance_drop').threshold:.0%} over {quality.labelled} labelled rows: "
            f"{shown}",
        )


def quiet(reading: Reading, rules: EndpointRules) -> bool:
    """No rule here can hold (see `conditions.quiet`): there is no quality evaluation to judge."""
    return reading.quality is None


def invalid_in_log(reading: Reading, threshold: float) -> tuple[bool | None, str]:
    """The inference log's part of `invalid_prediction`: (active, clear or unknown as None; detail)."""
    quality = reading.quality
    if quality is None or quality.prediction_rows == 0:
        return None, ""
    if quality.invalid_rows >= threshold:
        example = f": {quality.invalid_example}" if quality.invalid_example else ""
        return True, (
            f"{quality.invalid_rows} of {quality.prediction_rows} logged predictions in the last "
            f"{_window(quality)} are invalid{example}"
        )
    return False, ""
