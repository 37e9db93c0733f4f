"""Drift of a current window against a reference profile, per feature and for the dataset.

Scores (scipy does the statistics):
- PSI, population stability index, on the reference's quantile bins (categories for categorical
  columns), with half a row added to every bin on both sides so empty bins stay finite.
- Its no-drift expectation: with bin shares p, a reference of n rows and a window of m rows drawn
  from the same distribution, PSI / (1/n + 1/m) is close to chi-square with k-1 degrees of freedom
  (Yurdakul 2018). So it averages (k-1)(1/n + 1/m), and its `1 - psi_alpha` quantile is the critical
  value a PSI must clear before it means anything: small windows are noisy and would page otherwise.
- The Wasserstein distance (numeric), divided by the reference's standard deviation, so that 0.1 reads
  as "the distribution moved by a tenth of its spread" whatever the unit.
- The Jensen-Shannon distance (categorical), base 2, between 0 and 1.
- The Kolmogorov-Smirnov statistic, shown for reference only (it flags tiny shifts in large samples).
  It is the largest gap between the two empirical distribution functions, computed with numpy:
  `scipy.stats.ks_2samp` spends 3-5 ms per column on a p-value nobody reads here.

Wasserstein and KS are computed on 1001-point quantile sketches of both sides (exact to a thousandth of
the mass), which keeps scoring 20 features over 10,000 rows well below the 50 ms budget.

A feature drifts when its PSI clears both `psi_threshold` and the critical value, and its distance
(Wasserstein or Jensen-Shannon) clears its threshold: two different views must agree before a person
is paged. Below `min_reference` reference rows or `min_current` current rows there is no verdict.
The dataset drifts when at least `dataset_share` of the input features with a verdict drift.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, wasserstein_distance

from mlops_console.core.quality.columns import OTHER, as_floats, category, is_missing
from mlops_console.core.quality.reference import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    ReferenceProfile,
    bin_counts,
    is_prediction,
    quantile_sketch,
)

DRIFT, OK, TOO_FEW, NOT_IN_REFERENCE, ABSENT = "drift", "ok", "too few rows", "not in reference", "absent"
NEW_CATEGORY = "(new)"


@dataclass(frozen=True)
class DriftOptions:
    psi_threshold: float = 0.1
    psi_alpha: float = 0.001
    """Chance that a window drawn from the reference's own distribution clears the critical value."""
    wasserstein_threshold: float = 0.1
    jensen_shannon_threshold: float = 0.1
    min_reference: int = 1000
    min_current: int = 500
    dataset_share: float = 0.5


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    kind: str
    verdict: str
    reference_n: int
    current_n: int
    missing: int = 0
    """Current rows where the value was missing (not part of the scores)."""
    psi: float | None = None
    psi_expected: float | None = None
    psi_critical: float | None = None
    wasserstein: float | None = None
    jensen_shannon: float | None = None
    ks: float | None = None
    bins: tuple[tuple[str, float, int], ...] = ()
    """(bin label, reference share, current rows): the histogram a person compares, also what is kept."""

    @property
    def score(self) -> float | None:
        """The distance the verdict rests on besides PSI: Wasserstein (numeric) or Jensen-Shannon."""
        return self.wasserstein if self.kind == "numeric" else self.jensen_shannon

    @property
    def drifted(self) -> bool:
        return self.verdict == DRIFT

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "verdict": self.verdict,
            "score": self.score,
            "psi": self.psi,
            "psi_expected": self.psi_expected,
            "psi_critical": self.psi_critical,
            "wasserstein": self.wasserstein,
            "jensen_shannon": self.jensen_shannon,
            "ks": self.ks,
            "reference_n": self.reference_n,
            "current_n": self.current_n,
            "missing": self.missing,
            "bins": [{"bin": label, "reference": share, "current": n} for label, share, n in self.bins],
        }


@dataclass(frozen=True)
class DriftResult:
    features: tuple[FeatureDrift, ...]
    """Input features, most drifted first."""
    predictions: tuple[FeatureDrift, ...]
    drifted: tuple[str, ...]
    """Names of the drifting input features."""
    share: float | None
    """Drifting share of the input features that have a verdict (None when none has)."""
    dataset_drift: bool
    options: DriftOptions = field(default_factory=DriftOptions)

    @property
    def prediction_drift(self) -> bool:
        return any(p.drifted for p in self.predictions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_drift": self.dataset_drift,
            "drifted_features": list(self.drifted),
            "drifted_share": self.share,
            "dataset_share_threshold": self.options.dataset_share,
            "prediction_drift": self.prediction_drift,
            "features": [f.to_dict() for f in self.features],
            "predictions": [p.to_dict() for p in self.predictions],
        }


def psi(reference_shares: np.ndarray, current_counts: np.ndarray, reference_n: int) -> float:
    """Population stability index, half a row added to every bin on both sides."""
    k = reference_shares.size
    ref = (reference_shares * reference_n + 0.5) / (reference_n + 0.5 * k)
    cur = (current_counts + 0.5) / (current_counts.sum() + 0.5 * k)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


@functools.lru_cache(maxsize=256)
def _chi2_quantile(q: float, dof: int) -> float:
    return float(chi2.ppf(q, dof))


def psi_no_drift(bins: int, reference_n: int, current_n: int, alpha: float) -> tuple[float, float]:
    """(expected PSI, critical PSI at `1 - alpha`) when both samples come from one distribution."""
    scale = 1.0 / reference_n + 1.0 / current_n
    dof = max(bins - 1, 1)
    return dof * scale, _chi2_quantile(1.0 - alpha, dof) * scale


def ks_statistic(first: np.ndarray, second: np.ndarray) -> float:
    """Largest gap between the empirical distribution functions of two sorted samples."""
    points = np.concatenate([first, second])
    gap = np.searchsorted(first, points, side="right") / first.size
    gap -= np.searchsorted(second, points, side="right") / second.size
    return float(np.max(np.abs(gap)))


def _edge_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    bounds = [f"{e:.4g}" for e in edges]
    return [
        f"<= {bounds[0]}",
        *(f"{a} .. {b}" for a, b in itertools.pairwise(bounds)),
        f"> {bounds[-1]}",
    ]


def score_numeric(
    name: str, profile: NumericProfile, values: np.ndarray, options: DriftOptions
) -> FeatureDrift:
    present = np.sort(values[~np.isnan(values)])
    missing = int(values.size - present.size)
    shares = np.asarray(profile.proportions, dtype=np.float64)
    counts = bin_counts(np.asarray(profile.edges, dtype=np.float64), present)
    bins = tuple(zip(_edge_labels(profile.edges), profile.proportions, counts.tolist(), strict=True))
    if profile.count == 0 or present.size == 0:
        return FeatureDrift(name, "numeric", TOO_FEW, profile.count, int(present.size), missing, bins=bins)
    value = psi(shares, counts, profile.count)
    expected, critical = psi_no_drift(shares.size, profile.count, int(present.size), options.psi_alpha)
    sketch = np.asarray(profile.sketch, dtype=np.float64)
    current = quantile_sketch(present)
    scale = profile.std if profile.std > 0 else max(abs(profile.mean), 1.0)
    distance = float(wasserstein_distance(sketch, current)) / scale
    verdict = _verdict(
        profile.count, int(present.size), value, critical, distance, options.wasserstein_threshold, options
    )
    return FeatureDrift(
        name,
        "numeric",
        verdict,
        profile.count,
        int(present.size),
        missing,
        psi=value,
        psi_expected=expected,
        psi_critical=critical,
        wasserstein=distance,
        ks=ks_statistic(sketch, current),
        bins=bins,
    )


def score_categorical(
    name: str, profile: CategoricalProfile, values: Sequence[Any], options: DriftOptions
) -> FeatureDrift:
    known = dict(profile.counts)
    current: dict[str, int] = dict.fromkeys(known, 0)
    missing = 0
    for v in values:
        if is_missing(v):
            missing += 1
            continue
        key = category(v)
        if key not in known:
            key = OTHER if OTHER in known else NEW_CATEGORY
        current[key] = current.get(key, 0) + 1
    names = list(current)
    ref_counts = np.asarray([known.get(n, 0) for n in names], dtype=np.float64)
    cur_counts = np.asarray([current[n] for n in names], dtype=np.float64)
    present = int(cur_counts.sum())
    shares = ref_counts / profile.count if profile.count else ref_counts
    bins = tuple(zip(names, shares.tolist(), [int(c) for c in cur_counts], strict=True))
    if profile.count == 0 or present == 0:
        return FeatureDrift(name, "categorical", TOO_FEW, profile.count, present, missing, bins=bins)
    value = psi(shares, cur_counts, profile.count)
    expected, critical = psi_no_drift(len(names), profile.count, present, options.psi_alpha)
    distance = float(jensenshannon(shares, cur_counts / present, base=2))
    distance = 0.0 if math.isnan(distance) else distance
    verdict = _verdict(
        profile.count, present, value, critical, distance, options.jensen_shannon_threshold, options
    )
    return FeatureDrift(
        name,
        "categorical",
        verdict,
        profile.count,
        present,
        missing,
        psi=value,
        psi_expected=expected,
        psi_critical=critical,
        jensen_shannon=distance,
        bins=bins,
    )


def _verdict(
    reference_n: int,
    current_n: int,
    psi_value: float,
    critical: float,
    distance: float,
    threshold: float,
    options: DriftOptions,
) -> str:
    if reference_n < options.min_reference or current_n < options.min_current:
        return TOO_FEW
    clears_psi = psi_value > max(options.psi_threshold, critical)
    return DRIFT if clears_psi and distance > threshold else OK


def score_column(
    name: str, profile: Profile | None, values: Sequence[Any] | np.ndarray, options: DriftOptions
) -> FeatureDrift:
    """One column of the current window against its reference profile."""
    if profile is None:
        kind = "numeric" if isinstance(values, np.ndarray) else "categorical"
        return FeatureDrift(name, kind, NOT_IN_REFERENCE, 0, len(values))
    if isinstance(profile, NumericProfile):
        floats = values if isinstance(values, np.ndarray) else as_floats(values)
        return score_numeric(name, profile, floats, options)
    listed = values.tolist() if isinstance(values, np.ndarray) else values
    return score_categorical(name, profile, listed, options)


def score_window(
    reference: ReferenceProfile,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    options: DriftOptions | None = None,
) -> DriftResult:
    """Every column of the window against the reference; features the window lacks are `absent`."""
    options = options or DriftOptions()
    scored: list[FeatureDrift] = []
    for name, values in columns.items():
        scored.append(score_column(name, reference.get(name), values, options))
    for name, profile in reference.features:
        if name not in columns:
            scored.append(FeatureDrift(name, profile.kind, ABSENT, profile.count, 0))
    inputs = [f for f in scored if not is_prediction(f.name)]
    predictions = [f for f in scored if is_prediction(f.name)]
    judged = [f for f in inputs if f.verdict in (DRIFT, OK)]
    drifted = tuple(f.name for f in judged if f.drifted)
    share = len(drifted) / len(judged) if judged else None
    dataset_drift = share is not None and share >= options.dataset_share and bool(drifted)

    def order(f: FeatureDrift) -> tuple[int, float, str]:
        return (0 if f.drifted else 1, -(f.score if f.score is not None else -1.0), f.name)

    return DriftResult(
        features=tuple(sorted(inputs, key=order)),
        predictions=tuple(sorted(predictions, key=order)),
        drifted=drifted,
        share=share,
        dataset_drift=dataset_drift,
        options=options,
    )
