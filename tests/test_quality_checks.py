"""Inputs against the signature, invalid and stuck predictions, and live performance from actuals."""

from __future__ import annotations

import json
import math

import pytest
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

from mlops_console.core.quality.monitor import QualityMonitor
from mlops_console.core.quality.performance import Joiner, PerformanceOptions, performance
from mlops_console.core.quality.predictions import (
    NON_FINITE,
    NOT_SUMMING,
    OUT_OF_RANGE,
    SIGNATURE,
    StuckDetector,
    prediction_problems,
)
from mlops_console.core.quality.records import ActualRecord, InferenceRecord, parse_json_line
from mlops_console.core.quality.schema import Signature, check_inputs
from mlops_console.core.quality.window import QualityOptions

# As MLflow writes them in MLmodel (JSON text inside YAML).
IRIS_SIGNATURE = {
    "inputs": json.dumps(
        [
            {"type": "double", "name": n, "required": True}
            for n in ("sepal_length", "sepal_width", "petal_length")
        ]
        + [
            {"type": "long", "name": "count", "required": True},
            {"type": "string", "name": "note", "required": False},
        ]
    ),
    "outputs": json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]),
}
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "count": 3}


def test_rows_breaking_the_input_signature_are_counted_per_column_and_kind() -> None:
    signature = Signature.from_mlflow(IRIS_SIGNATURE)
    rows = [
        ROW,
        {**ROW, "note": "optional columns may be there"},
        {k: v for k, v in ROW.items() if k != "petal_length"},  # missing column
        {**ROW, "sepal_width": None},  # null
        {**ROW, "sepal_width": float("nan")},  # NaN is a null too
        {**ROW, "sepal_length": "5.1"},  # a string where a double belongs
        {**ROW, "count": 2.5},  # not an integer
        {**ROW, "count": 3.0, "extra": 1},  # 3.0 is a long in JSON; an extra column breaks nothing
    ]
    problems = check_inputs(signature, rows)
    assert (problems.rows, problems.broken_rows) == (8, 5)
    assert problems.columns == {
        "petal_length": {"missing": 1},
        "sepal_width": {"null": 2},
        "sepal_length": {"type": 1},
        "count": {"type": 1},
    }
    assert problems.extra == {"extra": 1}
    assert problems.summary().startswith("sepal_width null in 2 rows")


@pytest.mark.parametrize(
    ("prediction", "kinds"),
    [
        (1, []),
        (float("nan"), [NON_FINITE]),  # counted once, as non-finite, not also against the signature
        (math.inf, [NON_FINITE]),
        ("setosa", [SIGNATURE]),
        (2.5, [SIGNATURE]),
        ([0.2, 0.8], [SIGNATURE]),  # valid probabilities, but this model declares one label per row
    ],
)
def test_predictions_against_a_label_signature(prediction: object, kinds: list[str]) -> None:
    found = prediction_problems(prediction, Signature.from_mlflow(IRIS_SIGNATURE))
    assert [kind for kind, _ in found] == kinds


@pytest.mark.parametrize(
    ("prediction", "kinds"),
    [
        ([0.1, 0.2, 0.7], []),
        ([0.1, 0.2, 0.6], [NOT_SUMMING]),
        ([-0.1, 0.4, 0.7], [OUT_OF_RANGE]),
        ([0.5, float("nan"), 0.5], [NON_FINITE]),
        ([0.5, 0.5], [SIGNATURE]),  # two values where the signature declares three
        ({"label": 1}, [SIGNATURE]),
    ],
)
def test_class_probabilities(prediction: object, kinds: list[str]) -> None:
    outputs = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 3]}}])
    found = prediction_problems(prediction, Signature.from_mlflow({"outputs": outputs}))
    assert [kind for kind, _ in found] == kinds


def test_column_outputs_and_no_signature() -> None:
    outputs = json.dumps([{"type": "string", "name": "label"}, {"type": "double", "name": "score"}])
    signature = Signature.from_mlflow({"outputs": outputs})
    assert prediction_problems({"label": "cat", "score": 0.9}, signature) == []
    assert [k for k, _ in prediction_problems({"label": "cat"}, signature)] == [SIGNATURE]
    assert [k for k, _ in prediction_problems({"label": 3, "score": 0.9}, signature)] == [SIGNATURE]
    assert prediction_problems("anything", None) == []
    assert [k for k, _ in prediction_problems(float("inf"), None)] == [NON_FINITE]


def test_the_log_spells_non_finite_predictions_as_strings_and_reads_them_back() -> None:
    record = parse_json_line('{"time": 1, "inputs": {"x": null}, "prediction": ["NaN", "Infinity", 0.5]}')
    assert isinstance(record, InferenceRecord)
    assert math.isnan(record.prediction[0]) and record.prediction[1] == math.inf
    assert [k for k, _ in prediction_problems(record.prediction, None)] == [NON_FINITE]


def test_lines_the_fast_parser_refuses_are_read_as_the_contract_says() -> None:
    """Bare NaN/Infinity (what Python's `json` writes) and integers past 64 bits (read as floats) are
    records; a line
    nested beyond any parser's depth, bad UTF-8 and broken JSON are not (the tail counts them)."""
    bare = parse_json_line(b'{"time": 1, "inputs": {"x": NaN, "y": -Infinity}, "prediction": NaN}')
    assert isinstance(bare, InferenceRecord) and math.isnan(bare.prediction)
    assert math.isnan(bare.inputs["x"]) and bare.inputs["y"] == -math.inf
    huge = parse_json_line(b'{"time": 1, "inputs": {"n": 123456789012345678901234567890}, "prediction": 1}')
    assert isinstance(huge, InferenceRecord) and huge.inputs["n"] == pytest.approx(1.2345678901234568e29)
    deep = b'{"time": 1, "inputs": {"x": 1}, "prediction": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for line in (deep, b'{"time": 1, "inputs": {"x": "\xff\xfe"}, "prediction": 1}', b'{"time": 1,'):
        assert parse_json_line(line) is None
    assert parse_json_line(b'{"time": 2, "inputs": {"x": 1.5}, "prediction": [0.2, 0.8]}') == InferenceRecord(
        2.0, {"x": 1.5}, [0.2, 0.8]
    )


def test_a_model_answering_the_same_for_fifty_varied_rows_is_stuck() -> None:
    detector = StuckDetector(stuck_rows=50)
    for i in range(49):
        detector.update({"x": i}, 0)
    assert not detector.stuck and detector.run == 49
    detector.update({"x": 49}, 0)
    assert detector.stuck and detector.longest == 50
    detector.update({"x": 50}, 1)
    assert not detector.stuck and detector.run == 1 and detector.longest == 50


def test_identical_inputs_deserve_identical_answers() -> None:
    detector = StuckDetector(stuck_rows=50)
    for _ in range(200):
        detector.update({"x": 1.0}, [0.3, 0.7])
    assert not detector.stuck and detector.run == 200 and detector.longest == 0


def test_stuck_state_survives_a_restart_without_keeping_inputs() -> None:
    detector = StuckDetector(stuck_rows=50)
    for i in range(30):
        detector.update({"secret": f"s3cr3t {i}"}, "spam")
    saved = json.dumps(detector.to_dict())
    assert "s3cr3t" not in saved and "secret" not in saved  # a fingerprint of the inputs, not the inputs
    restored = StuckDetector.from_dict(json.loads(saved))
    for i in range(20):
        restored.update({"secret": f"more {i}"}, "spam")
    assert restored.stuck and restored.run == 50
    fresh = StuckDetector.from_dict({"prediction": json.dumps("spam"), "run": 1, "first_inputs": None})
    fresh.update({"a": 1}, "spam")
    assert fresh.inputs_varied


def _scored(i: int, prediction: object, version: str = "3", at: float = 1000.0) -> InferenceRecord:
    return InferenceRecord(at + i, {"x": float(i)}, prediction, "iris", version, id=f"r{i}")


def test_actuals_join_by_id_within_the_delay_from_either_side() -> None:
    joiner = Joiner(PerformanceOptions(max_delay=60))
    joined = joiner.add([_scored(0, 1), _scored(1, 2), ActualRecord(1030.0, "r0", 1)])
    assert [(p.version, p.prediction, p.actual) for p in joined] == [("3", 1, 1)]
    assert joiner.add([ActualRecord(1100.0, "r1", 2)]) == []  # 99 s after its prediction: too late
    early = joiner.add([ActualRecord(1200.0, "r5", 0)])  # the actual can come first
    assert early == [] and [p.actual for p in joiner.add([_scored(5, 0, at=1190.0)])] == [0]
    joiner.add([_scored(7, 1)])
    joiner.expire(now=2000.0)
    assert not joiner.predictions and joiner.expired == 2


def test_classifier_performance_against_the_training_run() -> None:
    predicted = [0, 1, 2, 2, 1, 0, 1, 1, 2, 0] * 30
    actual = [0, 1, 2, 1, 1, 0, 2, 1, 2, 0] * 30
    monitor = QualityMonitor(
        QualityOptions(window=3600), PerformanceOptions(min_labelled=200), learn_reference=False
    )
    monitor.set_training_metrics(("iris", "3"), {"accuracy": 0.97, "f1_macro": 0.96})
    records: list[InferenceRecord | ActualRecord] = []
    for i, (p, a) in enumerate(zip(predicted, actual, strict=True)):
        probabilities = [0.1, 0.1, 0.1]
        probabilities[p] = 0.8  # class probabilities: the predicted class is the largest
        records += [_scored(i, probabilities), ActualRecord(1000.0 + i + 5, f"r{i}", a)]
    monitor.add(records)
    (quality,) = monitor.evaluate(end=1000.0 + 400)
    report = quality.performance
    assert report is not None and report.task == "classification" and report.labelled == 300
    assert report.metrics["accuracy"] == pytest.approx(accuracy_score(actual, predicted))
    assert report.metrics["f1"] == pytest.approx(f1_score(actual, predicted, average="macro"))
    assert report.training == {"accuracy": 0.97, "f1": 0.96}
    assert report.dropped == ("accuracy", "f1") and report.performance_drop
    fine = performance(list(monitor.labelled[("iris", "3")]), {"accuracy": 0.82})
    assert not fine.performance_drop  # 0.8 is within 10 % of 0.82


def test_regressor_performance_needs_enough_labelled_rows() -> None:
    rows = [_scored(i, 100.0 + i % 7) for i in range(150)]
    actuals = [ActualRecord(1000.0 + i, f"r{i}", 100.0 + (i % 5) * 1.5) for i in range(150)]
    joiner = Joiner()
    labelled = joiner.add([*rows, *actuals])
    report = performance(labelled, {"rmse": 0.5, "mae": 0.4})
    truth, guess = [a.actual for a in labelled], [p.prediction for p in labelled]
    assert report.task == "regression"
    assert report.metrics["mae"] == pytest.approx(mean_absolute_error(truth, guess))
    assert report.metrics["rmse"] == pytest.approx(mean_squared_error(truth, guess) ** 0.5)
    assert not report.enough and not report.performance_drop  # 150 labelled rows < 200
    assert performance(labelled, {"rmse": 0.5}, PerformanceOptions(min_labelled=100)).dropped == ("rmse",)


def test_whole_number_columns_take_the_fast_path_with_the_same_answers() -> None:
    """A column of numbers only is checked with array operations: NaN is still a null, 2.5 still no long."""
    specs = [{"type": "double", "name": "x"}, {"type": "long", "name": "n"}, {"type": "string", "name": "s"}]
    signature = Signature.from_mlflow({"inputs": json.dumps(specs)})
    rows = [
        {"x": 1.0, "n": 1, "s": "a"},
        {"x": float("nan"), "n": 2.5, "s": "b"},
        {"x": 3, "n": 3.0, "s": 4.0},
    ]
    problems = check_inputs(signature, rows)
    assert problems.columns == {"x": {"null": 1}, "n": {"type": 1}, "s": {"type": 1}}
    assert problems.broken_rows == 2
