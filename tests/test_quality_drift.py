"""Drift statistics: quiet on samples of the reference's own distribution, loud on shifted ones,
silent below the minimum sizes, and the same numbers scipy gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp, wasserstein_distance

from mlops_console.core.quality.drift import (
    DRIFT,
    NOT_IN_REFERENCE,
    OK,
    TOO_FEW,
    DriftOptions,
    psi_no_drift,
    score_window,
)
from mlops_console.core.quality.reference import ReferenceProfile, profile_columns

RNG_SEED = 20261128


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    rng = np.random.default_rng(RNG_SEED)
    columns: dict[str, object] = {f"f{i}": rng.normal(10.0, 2.0, 4000) for i in range(8)}
    columns["colour"] = rng.choice(["red", "green", "blue"], 4000, p=[0.5, 0.3, 0.2]).tolist()
    columns["prediction"] = rng.choice([0, 1, 2], 4000).astype(float)
    return profile_columns(columns, source="test")


def window(rng: np.random.Generator, n: int, shift: dict[str, float] | None = None) -> dict[str, object]:
    shift = shift or {}
    columns: dict[str, object] = {
        f"f{i}": rng.normal(10.0 + shift.get(f"f{i}", 0.0), 2.0, n) for i in range(8)
    }
    p = [0.2, 0.3, 0.5] if "colour" in shift else [0.5, 0.3, 0.2]
    columns["colour"] = rng.choice(["red", "green", "blue"], n, p=p).tolist()
    columns["prediction"] = rng.choice([0, 1, 2], n).tolist()
    return columns


def test_no_false_alarms_on_the_reference_distribution(reference: ReferenceProfile) -> None:
    """200 windows of 500 rows drawn like the reference: no feature drifts, no dataset drift."""
    rng = np.random.default_rng(RNG_SEED + 1)
    results = [score_window(reference, window(rng, 500)) for _ in range(200)]
    assert sum(len(r.drifted) for r in results) == 0
    assert not any(r.dataset_drift or r.prediction_drift for r in results)
    assert all(f.verdict == OK for r in results for f in r.features)


def test_shifted_features_are_named_and_the_others_are_not(reference: ReferenceProfile) -> None:
    rng = np.random.default_rng(RNG_SEED + 2)
    result = score_window(reference, window(rng, 600, {"f1": 1.5, "f4": -2.0, "colour": 1}))
    assert set(result.drifted) == {"f1", "f4", "colour"}
    assert {f.name for f in result.features[:3]} == {"f1", "f4", "colour"}  # drifting features first
    assert not result.dataset_drift  # 3 of 9 features, below the default half
    assert score_window(reference, window(rng, 600, {f"f{i}": 2.0 for i in range(5)})).dataset_drift
    f1 = next(f for f in result.features if f.name == "f1")
    assert f1.psi > f1.psi_critical and f1.wasserstein > 0.5 and f1.current_n == 600


def test_small_samples_get_no_verdict(reference: ReferenceProfile) -> None:
    rng = np.random.default_rng(RNG_SEED + 3)
    shifted = window(rng, 499, {"f0": 5.0})
    result = score_window(reference, shifted)
    f0 = next(f for f in result.features if f.name == "f0")
    assert f0.verdict == TOO_FEW and f0.psi > 1.0  # plainly shifted, but too few rows to page on
    assert result.share is None and not result.dataset_drift
    strict = score_window(reference, window(rng, 600, {"f0": 5.0}), DriftOptions(min_reference=5000))
    assert all(f.verdict == TOO_FEW for f in strict.features)


def test_psi_critical_value_follows_the_sample_sizes() -> None:
    """Its no-drift expectation: (k-1)(1/n+1/m); the critical value above it, shrinking as samples grow."""
    expected, critical = psi_no_drift(10, 1000, 500, 0.001)
    assert expected == pytest.approx(9 * (1 / 1000 + 1 / 500))
    assert critical > expected
    assert psi_no_drift(10, 100_000, 50_000, 0.001)[1] < critical / 50
    # And the expectation holds: the mean PSI of no-drift windows sits close to it.
    rng = np.random.default_rng(RNG_SEED + 4)
    ref = profile_columns({"x": rng.normal(size=1000)}, source="t")
    psis = [score_window(ref, {"x": rng.normal(size=500)}).features[0].psi for _ in range(300)]
    assert np.mean(psis) == pytest.approx(expected, rel=0.25)


def test_scores_match_scipy_on_the_same_samples() -> None:
    rng = np.random.default_rng(RNG_SEED + 5)
    ref_values, cur_values = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 3000)
    profile = profile_columns({"x": ref_values, "c": rng.choice(["a", "b"], 5000).tolist()}, source="t")
    current = {"x": cur_values, "c": rng.choice(["a", "b"], 3000, p=[0.8, 0.2]).tolist()}
    result = score_window(profile, current)
    x = next(f for f in result.features if f.name == "x")
    c = next(f for f in result.features if f.name == "c")
    assert x.ks == pytest.approx(ks_2samp(ref_values, cur_values).statistic, abs=0.003)
    assert x.wasserstein == pytest.approx(
        wasserstein_distance(ref_values, cur_values) / ref_values.std(), rel=0.02
    )
    counts = dict(profile.get("c").counts)  # type: ignore[union-attr]
    p = np.array([counts["a"], counts["b"]]) / 5000
    q = np.array([current["c"].count("a"), current["c"].count("b")]) / 3000  # type: ignore[attr-defined]
    assert c.jensen_shannon == pytest.approx(jensenshannon(p, q, base=2))
    assert x.verdict == DRIFT and c.verdict == DRIFT


def test_unknown_absent_and_missing_columns(reference: ReferenceProfile) -> None:
    rng = np.random.default_rng(RNG_SEED + 6)
    columns = window(rng, 600)
    del columns["f7"]
    columns["surprise"] = rng.normal(size=600)
    values = np.array(columns["f0"], dtype=float)
    values[:50] = np.nan
    columns["f0"] = values
    result = score_window(reference, columns)
    verdicts = {f.name: f for f in result.features}
    assert verdicts["surprise"].verdict == NOT_IN_REFERENCE
    assert verdicts["f7"].verdict == "absent"
    assert (verdicts["f0"].verdict, verdicts["f0"].missing, verdicts["f0"].current_n) == (OK, 50, 550)


def test_a_profile_survives_json_and_scores_the_same(reference: ReferenceProfile) -> None:
    """What the store will keep: the profile as JSON, never the rows."""
    restored = ReferenceProfile.from_dict(json.loads(json.dumps(reference.to_dict())))
    rng = np.random.default_rng(RNG_SEED + 7)
    columns = window(rng, 800, {"f2": 1.0})
    assert score_window(restored, columns) == score_window(reference, columns)
    assert max(len(json.dumps(p.to_dict())) for _, p in reference.features) < 40_000


def test_the_psi_critical_value_guards_small_samples() -> None:
    """With minimum sizes lowered to 100/50, chance alone lifts PSI above 0.1 (its no-drift mean is
    about 0.14 here): only the critical value for these sizes keeps such windows quiet."""
    rng = np.random.default_rng(RNG_SEED + 8)
    small = DriftOptions(min_reference=100, min_current=50, wasserstein_threshold=0.0)
    reference = profile_columns({"x": rng.normal(size=200)}, source="t")
    results = [score_window(reference, {"x": rng.normal(size=100)}, small).features[0] for _ in range(200)]
    assert sum(f.psi > 0.1 for f in results) > 50  # the fixed threshold alone would page often
    assert sum(f.drifted for f in results) <= 1
    shifted = score_window(reference, {"x": rng.normal(1.5, 1.0, size=100)}, small).features[0]
    assert shifted.drifted
