"""An endpoint's model quality as of its last evaluation: frozen, JSON-friendly, and what both the rules
and the screens read (it crosses from the quality thread to the engine's loop and on to the UI).

Only aggregates: scores, bin shares and counts, problem counts, the prediction mix. Never an input value.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and scipy stay out of the console's first frame: the UI imports this module
    from mlops_console.core.quality.drift import FeatureDrift
    from mlops_console.core.quality.window import VersionQuality

DRIFT, OK = "drift", "ok"
"""The verdicts of `quality.drift` that are judgements (the others say why there is none)."""

TREND_POINTS = 30
"""Scores kept per feature for its trend sparkline (one per evaluation)."""


@dataclass(frozen=True, slots=True)
class FeatureScore:
    """One input feature (or the prediction) of the window against the reference."""

    name: str
    kind: str
    """`numeric` or `categorical`."""
    verdict: str
    """`drift`, `ok`, `too few rows`, `not in reference` or `absent`."""
    score: float | None
    """Normalised Wasserstein (numeric) or Jensen-Shannon (categorical) distance."""
    psi: float | None
    psi_critical: float | None
    ks: float | None
    reference_n: int
    current_n: int
    missing: int
    bins: tuple[tuple[str, float, int], ...] = ()
    """(bin, reference share, current rows)."""
    trend: tuple[float, ...] = ()
    """This feature's score at the last evaluations, oldest first."""

    @property
    def drifted(self) -> bool:
        return self.verdict == DRIFT

    @classmethod
    def of(cls, feature: FeatureDrift) -> FeatureScore:
        return cls(
            feature.name,
            feature.kind,
            feature.verdict,
            feature.score,
            feature.psi,
            feature.psi_critical,
            feature.ks,
            feature.reference_n,
            feature.current_n,
            feature.missing,
            tuple((str(label), float(share), int(n)) for label, share, n in feature.bins),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["bins"] = [list(b) for b in self.bins]
        data["trend"] = list(self.trend)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureScore:
        known = {k: v for k, v in data.items() if k in _FEATURE_FIELDS}
        known["bins"] = tuple((str(b[0]), float(b[1]), int(b[2])) for b in known.get("bins", ()))
        known["trend"] = tuple(float(v) for v in known.get("trend", ()))
        return cls(**known)


_FEATURE_FIELDS = frozenset(f.name for f in fields(FeatureScore))


@dataclass(frozen=True, slots=True)
class QualitySnapshot:
    """What the last evaluation of an endpoint's inference log found, for its newest model version."""

    log: str
    evaluated_at: float
    model: str | None = None
    version: str | None = None
    window: float = 0.0
    """Seconds of rows in the current window."""
    rows: int = 0
    """Rows of this version in the window."""
    reference: str = ""
    """Where the reference came from (`artifact:reference.csv of iris v3 (run ...)`, `first 1500 rows
    of version 3 (...)`), or why there is none yet."""
    features: tuple[FeatureScore, ...] = ()
    """Input features, most drifted first."""
    predictions: tuple[FeatureScore, ...] = ()
    drifted: tuple[str, ...] = ()
    drift_share: float | None = None
    """Drifting share of the features with a verdict (None: no verdict yet)."""
    dataset_share: float = 0.5
    """The share at which the dataset drifts (`feature_drift`'s threshold)."""
    input_rows: int = 0
    broken_rows: int = 0
    """Rows whose inputs break the signature (missing columns, nulls, wrong types)."""
    input_problems: str = ""
    signature: str = ""
    """Where the input signature came from."""
    prediction_rows: int = 0
    invalid_rows: int = 0
    invalid_example: str = ""
    stuck: bool = False
    stuck_run: int = 0
    stuck_prediction: str | None = None
    longest_run: int = 0
    mix: tuple[tuple[str, float], ...] = ()
    """Class shares of the prediction (or p5/p50/p95 of a numeric score), largest first."""
    labelled: int = 0
    performance: tuple[tuple[str, float, float | None], ...] = ()
    """(metric, live value, training run's value) where actual outcomes arrived."""
    performance_dropped: tuple[str, ...] = ()
    performance_enough: bool = False
    malformed: int = 0
    """Lines of the log that were not records, since the console started."""
    events: tuple[str, ...] = ()
    """Recent rotations, truncations and losses of the log."""
    error: str | None = None
    """Why the log or the reference cannot be read right now (the figures are the last good ones)."""
    other_versions: tuple[str, ...] = ()
    """Other versions with rows in the window (a promote in the last `window`)."""

    @property
    def dataset_drift(self) -> bool:
        return self.drift_share is not None and bool(self.drifted) and self.drift_share >= self.dataset_share

    @property
    def prediction_drift(self) -> bool | None:
        """True if the prediction drifts, False if it was judged and does not, None without a verdict."""
        judged = [p for p in self.predictions if p.verdict in (DRIFT, OK)]
        if not judged:
            return None
        return any(p.drifted for p in judged)

    def feature(self, name: str) -> FeatureScore | None:
        return next((f for f in (*self.features, *self.predictions) if f.name == name), None)

    def with_trends(self, previous: QualitySnapshot | None) -> QualitySnapshot:
        """The same figures, each feature's trend extended from the previous evaluation's."""
        before = {f.name: f.trend for f in (*previous.features, *previous.predictions)} if previous else {}

        def extend(feature: FeatureScore) -> FeatureScore:
            trend = before.get(feature.name, ())
            if feature.score is not None:
                trend = (*trend, feature.score)[-TREND_POINTS:]
            return replace(feature, trend=trend)

        return replace(
            self,
            features=tuple(extend(f) for f in self.features),
            predictions=tuple(extend(f) for f in self.predictions),
        )

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["features"] = [f.to_dict() for f in self.features]
        data["predictions"] = [f.to_dict() for f in self.predictions]
        for name in ("drifted", "events", "other_versions", "performance_dropped"):
            data[name] = list(data[name])
        data["mix"] = [list(m) for m in self.mix]
        data["performance"] = [list(p) for p in self.performance]
        data["dataset_drift"] = self.dataset_drift
        data["prediction_drift"] = self.prediction_drift
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualitySnapshot:
        known = {k: v for k, v in data.items() if k in _QUALITY_FIELDS}
        known["features"] = tuple(FeatureScore.from_dict(f) for f in known.get("features", ()))
        known["predictions"] = tuple(FeatureScore.from_dict(f) for f in known.get("predictions", ()))
        for name in ("drifted", "events", "other_versions", "performance_dropped"):
            known[name] = tuple(known.get(name, ()))
        known["mix"] = tuple((str(k), float(v)) for k, v in known.get("mix", ()))
        known["performance"] = tuple(
            (str(p[0]), float(p[1]), None if p[2] is None else float(p[2]))
            for p in known.get("performance", ())
        )
        return cls(**known)


_QUALITY_FIELDS = frozenset(f.name for f in fields(QualitySnapshot))


def _mix(mix: dict[str, Any]) -> tuple[tuple[str, float], ...]:
    if mix.get("kind") == "classes":
        return tuple((str(k), float(v)) for k, v in mix.get("shares", {}).items())
    if mix.get("kind") == "numeric" and mix.get("count"):
        return tuple((name, float(mix[name])) for name in ("p5", "p50", "p95"))
    return ()


def snapshot_of(
    quality: VersionQuality,
    *,
    log: str,
    evaluated_at: float,
    window: float,
    dataset_share: float,
    signature: str = "",
    malformed: int = 0,
    events: tuple[str, ...] = (),
    other_versions: tuple[str, ...] = (),
) -> QualitySnapshot:
    """The frozen, aggregate-only form of one evaluated window."""
    drift = quality.drift
    inputs = quality.inputs
    predictions = quality.predictions
    stuck = quality.stuck
    report = quality.performance
    return QualitySnapshot(
        log=log,
        evaluated_at=evaluated_at,
        model=quality.model,
        version=quality.version,
        window=window,
        rows=quality.rows,
        reference=quality.reference,
        features=tuple(FeatureScore.of(f) for f in drift.features) if drift else (),
        predictions=tuple(FeatureScore.of(f) for f in drift.predictions) if drift else (),
        drifted=tuple(drift.drifted) if drift else (),
        drift_share=drift.share if drift else None,
        dataset_share=dataset_share,
        input_rows=inputs.rows if inputs else 0,
        broken_rows=inputs.broken_rows if inputs else 0,
        input_problems=inputs.summary() if inputs else "",
        signature=signature,
        prediction_rows=predictions.rows,
        invalid_rows=predictions.invalid_rows,
        invalid_example=predictions.examples[0] if predictions.examples else "",
        stuck=bool(stuck.get("stuck")),
        stuck_run=int(stuck.get("run", 0)),
        stuck_prediction=stuck.get("prediction"),
        longest_run=int(stuck.get("longest", 0)),
        mix=_mix(quality.prediction_mix),
        labelled=report.labelled if report else 0,
        performance=tuple((k, v, report.training.get(k)) for k, v in report.metrics.items())
        if report
        else (),
        performance_dropped=report.dropped if report else (),
        performance_enough=report.enough if report else False,
        malformed=malformed,
        events=events,
        other_versions=other_versions,
    )
