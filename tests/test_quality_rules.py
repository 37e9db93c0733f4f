"""The model-quality rules on frozen evaluations: each rule's active, clear and unknown states, its
`[[rules]]` threshold, and the evidence its summary gives. (End to end through the engine, the store and
a pager: `test_quality_engine.py`.)"""

from __future__ import annotations

from dataclasses import replace

from mlops_console.config import Settings, parse_settings
from mlops_console.core.conditions import Condition, Reading, evaluate
from mlops_console.core.quality.snapshot import FeatureScore, QualitySnapshot
from mlops_console.core.series import WindowStats

QUALITY_RULES = ("feature_drift", "prediction_drift", "input_schema", "stuck_prediction", "performance_drop")


def settings(*rules: dict) -> Settings:  # type: ignore[type-arg]
    endpoint = {"name": "ep", "url": "http://127.0.0.1:1", "model": "iris", "inference_log": {"path": "/x"}}
    return parse_settings({"endpoints": [endpoint], "rules": list(rules)})


def feature(name: str, verdict: str, score: float = 0.02) -> FeatureScore:
    return FeatureScore(
        name, "numeric", verdict, score, 0.5 if verdict == "drift" else 0.01, 0.06, 0.1, 2000, 600, 0
    )


def quality(**changes: object) -> QualitySnapshot:
    base = QualitySnapshot(
        log="/x",
        evaluated_at=100.0,
        model="iris",
        version="3",
        window=900.0,
        rows=600,
        reference="artifact:reference.csv of iris v3 (run abc)",
        features=(feature("a", "ok"), feature("b", "ok"), feature("c", "ok"), feature("d", "ok")),
        predictions=(feature("prediction", "ok"),),
        drift_share=0.0,
        input_rows=600,
        signature="MLmodel of iris v3",
        prediction_rows=600,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def reading(q: QualitySnapshot | None, *, invalid: int = 0) -> Reading:
    return Reading(
        endpoint="ep", model="iris", now=100.0, interval=1.0, health="up", probes=10,
        consecutive_failures=0, consecutive_invalid=invalid, last_error=None, served_version="3",
        expected_version="3", alias="production", window=WindowStats(), window_source="probe",
        traffic_measured=False, rps=None, throughput_baseline=None, quality=q, quality_interval=30.0,
    )  # fmt: skip


def conditions(q: QualitySnapshot | None, s: Settings | None = None, **kw: int) -> dict[str, Condition]:
    return {c.rule: c for c in evaluate(s or settings(), reading(q, **kw))}


def test_without_an_inference_log_no_quality_rule_is_evaluated() -> None:
    found = conditions(None)
    assert not set(QUALITY_RULES) & set(found)
    assert found["invalid_prediction"].active is False  # the probe's part still clears it


def test_feature_drift_fires_at_the_share_naming_features_scores_and_sizes() -> None:
    two = quality(
        features=(
            feature("a", "drift", 1.5),
            feature("b", "drift", 0.9),
            feature("c", "ok"),
            feature("d", "ok"),
        ),
        drifted=("a", "b"),
        drift_share=0.5,
    )
    c = conditions(two)["feature_drift"]
    assert c.active is True and c.version == "3" and c.value == 0.5 and c.interval == 30.0
    assert c.detail.startswith(
        "ep (iris v3): 2 of 4 features drift (share 0.50, threshold 0.50): a 1.5, PSI 0.5; b 0.9"
    )
    assert "600 rows in the last 15m against 2000 reference rows (artifact:reference.csv" in c.detail
    # One of four is below the default half, but not below a configured quarter.
    one = replace(
        two, features=(feature("a", "drift", 1.5), *two.features[1:]), drifted=("a",), drift_share=0.25
    )
    one = replace(one, features=(one.features[0], feature("b", "ok"), *one.features[2:]))
    assert conditions(one)["feature_drift"].active is False
    quarter = settings({"rule": "feature_drift", "threshold": 0.25})
    assert conditions(one, quarter)["feature_drift"].active is True


def test_without_a_verdict_drift_rules_are_unknown_never_clear() -> None:
    early = quality(
        features=(feature("a", "too few rows"),),
        predictions=(feature("prediction", "too few rows"),),
        drift_share=None,
    )
    found = conditions(early)
    assert found["feature_drift"].active is None
    assert found["prediction_drift"].active is None


def test_prediction_drift_follows_the_predictions_verdict() -> None:
    assert conditions(quality())["prediction_drift"].active is False
    moved = quality(predictions=(feature("prediction", "drift", 0.4),))
    c = conditions(moved)["prediction_drift"]
    assert c.active is True and "prediction 0.4" in c.detail


def test_input_schema_fires_above_the_share_of_broken_rows_with_enough_rows() -> None:
    broken = quality(broken_rows=31, input_problems="petal_width missing in 31 rows")
    c = conditions(broken)["input_schema"]
    assert c.active is True and "31 of 600 rows" in c.detail and "petal_width missing in 31 rows" in c.detail
    assert conditions(quality(broken_rows=30))["input_schema"].active is False  # 5.0% is not above 5%
    assert conditions(quality(input_rows=10, broken_rows=10))["input_schema"].active is None  # too few rows
    strict = settings({"rule": "input_schema", "threshold": 0.01})
    assert conditions(quality(broken_rows=7), strict)["input_schema"].active is True


def test_stuck_prediction_fires_and_clears_on_the_detector() -> None:
    stuck = quality(stuck=True, stuck_run=80, stuck_prediction="1")
    c = conditions(stuck)["stuck_prediction"]
    assert (
        c.active is True
        and c.severity == "critical"
        and "the same prediction 1 for the last 80 rows" in c.detail
    )
    assert conditions(quality())["stuck_prediction"].active is False
    assert conditions(quality(prediction_rows=0, rows=0))["stuck_prediction"].active is None


def test_invalid_predictions_in_the_log_raise_invalid_prediction_beside_the_probe() -> None:
    logged = quality(invalid_rows=3, invalid_example="prediction holds NaN or an infinity: NaN")
    c = conditions(logged)["invalid_prediction"]
    assert c.active is True and "3 of 600 logged predictions in the last 15m are invalid" in c.detail
    assert conditions(quality(invalid_rows=1))["invalid_prediction"].active is False  # below 2
    # The probe's own evidence still fires it when the log is clean.
    assert conditions(quality(), invalid=2)["invalid_prediction"].active is True


def test_performance_drop_needs_enough_labelled_rows() -> None:
    dropped = quality(
        labelled=400,
        performance=(("accuracy", 0.71, 0.95),),
        performance_dropped=("accuracy",),
        performance_enough=True,
    )
    c = conditions(dropped)["performance_drop"]
    assert (
        c.active is True and "accuracy 0.71 (training 0.95)" in c.detail and "400 labelled rows" in c.detail
    )
    few = quality(labelled=20, performance=(("accuracy", 0.71, 0.95),), performance_enough=False)
    assert conditions(few)["performance_drop"].active is None
    fine = quality(labelled=400, performance=(("accuracy", 0.94, 0.95),), performance_enough=True)
    assert conditions(fine)["performance_drop"].active is False


def test_a_snapshot_survives_the_status_row_round_trip() -> None:
    q = quality(
        features=(replace(feature("a", "drift", 1.5), bins=(("<= 1", 0.1, 5),), trend=(0.5, 1.5)),),
        drifted=("a",),
        drift_share=1.0,
        performance=(("f1", 0.5, None),),
    )
    assert QualitySnapshot.from_dict(q.to_dict()) == q


# -- what each quality rule says, exactly (the text reaches the page) ------------------------------------
def scored(
    name: str, verdict: str, score: float | None, psi: float | None, ref: int, cur: int
) -> FeatureScore:
    return FeatureScore(name, "numeric", verdict, score, psi, 0.06, 0.1, ref, cur, 0)


def test_who_names_the_model_and_version_of_the_log_or_else_the_endpoints() -> None:
    assert conditions(quality(model=None))["stuck_prediction"].detail.startswith("ep (iris v3): ")
    assert conditions(quality(version=None))["stuck_prediction"].detail.startswith("ep (iris): ")
    anonymous = replace(reading(quality(model=None)), model=None)
    [stuck] = [c for c in evaluate(settings(), anonymous) if c.rule == "stuck_prediction"]
    assert stuck.detail.startswith("ep: the same prediction")


def test_quality_conditions_carry_the_logged_version_or_else_the_served_one() -> None:
    assert conditions(quality(version="5"))["feature_drift"].version == "5", "rows of the version logged"
    assert conditions(quality(version=None))["feature_drift"].version == "3"


def test_feature_drift_details_sizes_scores_and_the_quiet_case() -> None:
    features = (
        scored("a", "drift", None, None, 3000, 700),  # the largest reference: a drifting feature
        scored("b", "ok", 0.01, 0.02, 2000, 900),  # the largest window: a feature that holds
        scored("c", "too few rows", 0.9, 0.9, 9000, 9000),  # no verdict: not counted
    )
    drifting = quality(features=features, drifted=("a",), drift_share=0.5)
    assert conditions(drifting)["feature_drift"].detail == (
        "ep (iris v3): 1 of 2 features drift (share 0.50, threshold 0.50): a -; "
        "900 rows in the last 15m against 3000 reference rows (artifact:reference.csv of iris v3 (run abc))"
    )
    quiet = conditions(quality(window=3600.0))["feature_drift"]
    assert (quiet.active, quiet.value) == (False, 0.0)
    assert quiet.detail == (
        "ep (iris v3): no feature drifts; 600 rows in the last 1h against 2000 reference rows "
        "(artifact:reference.csv of iris v3 (run abc))"
    )
    nothing = conditions(quality(features=(), window=60.0, drift_share=None))["feature_drift"]
    assert nothing.detail.endswith(
        ": no feature drifts; 0 rows in the last 1m against 0 reference rows ("
        + ("artifact:reference.csv of iris v3 (run abc))")
    )
    # A share of 0 never drifts, whatever the list says.
    zero = conditions(quality(drifted=("a",), drift_share=0.0))["feature_drift"]
    assert zero.active is False and "(share 0.00, threshold 0.50)" in zero.detail


def test_windows_are_written_in_the_largest_whole_unit() -> None:
    def window_of(seconds: float) -> str:
        detail = conditions(quality(window=seconds, broken_rows=0))["input_schema"].detail
        return detail.split(" in the last ")[1].split(" ")[0]

    assert [window_of(s) for s in (60.0, 90.0, 3600.0, 5400.0, 7200.0, 30.0)] == [
        "1m",
        "90s",
        "1h",
        "90m",
        "2h",
        "30s",
    ]


def test_prediction_drift_value_is_the_first_score_and_says_when_it_holds() -> None:
    two = quality(predictions=(scored("p0", "ok", None, None, 10, 10), scored("p1", "ok", 0.4, None, 10, 10)))
    c = conditions(two)["prediction_drift"]
    assert (c.active, c.value, c.detail) == (False, 0.4, "ep (iris v3): the prediction's distribution holds")
    unscored = conditions(quality(predictions=(scored("p0", "ok", None, None, 10, 10),)))["prediction_drift"]
    assert unscored.value is None
    moved = conditions(quality(predictions=(scored("p0", "drift", 0.4, 0.3, 10, 10),)))["prediction_drift"]
    assert moved.detail.startswith(
        "ep (iris v3): the prediction's distribution moved (p0 0.4, PSI 0.3); 600 rows"
    )


def test_input_schema_value_detail_and_its_edges() -> None:
    c = conditions(quality(broken_rows=31, input_problems="petal_width missing in 31 rows"))["input_schema"]
    assert c.value == 31 / 600
    assert c.detail == (
        "ep (iris v3): 31 of 600 rows in the last 15m break the input signature (5.2% > 5.0%): "
        "petal_width missing in 31 rows [signature: MLmodel of iris v3]"
    )
    assert "(0.0% > 5.0%)" in conditions(quality(broken_rows=0))["input_schema"].detail
    assert conditions(quality(input_rows=20, broken_rows=0))["input_schema"].active is False, (
        "20 rows suffice"
    )
    empty = conditions(quality(input_rows=0, broken_rows=0))["input_schema"]
    assert (empty.active, empty.value) == (None, None), "a signature but no rows yet"
    assert "(0.0% > 5.0%)" in empty.detail
    assert conditions(quality(signature=""))["input_schema"].active is False, "rows without a signature"
    assert "input_schema" not in conditions(quality(signature="", input_rows=0))


def test_stuck_prediction_value_detail_and_a_single_row_clears() -> None:
    c = conditions(quality(stuck=True, stuck_run=80, stuck_prediction="1"))["stuck_prediction"]
    assert (c.value, c.detail) == (
        80.0,
        "ep (iris v3): the same prediction 1 for the last 80 rows while the inputs varied",
    )
    assert conditions(quality(prediction_rows=1))["stuck_prediction"].active is False


def test_performance_drop_names_every_metric_and_says_when_none_dropped() -> None:
    both = (("accuracy", 0.71, 0.95), ("f1", 0.5, None))
    dropped = conditions(
        quality(
            labelled=400, performance=both, performance_dropped=("accuracy", "f1"), performance_enough=True
        )
    )["performance_drop"]
    assert dropped.detail == (
        "ep (iris v3): accuracy, f1 below the training run by more than 10% over 400 labelled rows: "
        "accuracy 0.71 (training 0.95); f1 0.5"
    )
    fine = conditions(quality(labelled=400, performance=both, performance_enough=True))["performance_drop"]
    assert fine.detail.startswith("ep (iris v3): no metric below the training run by more than 10%")


def test_invalid_predictions_in_the_log_at_the_threshold_with_and_without_an_example() -> None:
    at = conditions(quality(invalid_rows=2))["invalid_prediction"]
    assert at.active is True
    assert at.detail == "ep: 2 of 600 logged predictions in the last 15m are invalid"
    example = conditions(quality(invalid_rows=3, invalid_example="NaN"))["invalid_prediction"]
    assert example.detail == "ep: 3 of 600 logged predictions in the last 15m are invalid: NaN"
    both = conditions(quality(invalid_rows=3, invalid_example="NaN"), invalid=2)["invalid_prediction"]
    assert both.detail == (
        "ep returned 2 invalid prediction answers in a row; "
        "ep: 3 of 600 logged predictions in the last 15m are invalid: NaN"
    )
    # A single logged prediction is evidence too, under a threshold of one.
    one = settings({"rule": "invalid_prediction", "threshold": 1})
    assert conditions(quality(prediction_rows=1, invalid_rows=1), one)["invalid_prediction"].active is True
