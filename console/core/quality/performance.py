"""Live model performance: predictions joined to their actual outcomes, against the training run.

A scored row that carries an `id` waits (at most `max_delay`) for a `{"time", "id", "actual"}` record,
from the same log or another; an actual may also come first and wait for its prediction. Joined rows
give accuracy and macro F1 for a classifier, MAE and RMSE for a regressor (scikit-learn computes them,
as it did for the training run), per model version, with the number of labelled rows. The training
run's logged metric is the yardstick: performance dropped when a live metric is worse than it by more
than `margin` (relative) with at least `min_labelled` labelled rows.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlops_console.core.quality.columns import category, is_number, prediction_columns
from mlops_console.core.quality.records import ActualRecord, InferenceRecord

CLASSIFICATION, REGRESSION = "classification", "regression"
# Live metric -> training-run metric names tried in order; the demo and most hand-written runs log
# the first, MLflow's autologging the last.
TRAINING_NAMES: dict[str, tuple[str, ...]] = {
    "accuracy": ("accuracy", "accuracy_score", "test_accuracy", "val_accuracy", "training_accuracy_score"),
    "f1": ("f1_macro", "f1", "f1_score", "test_f1", "val_f1", "training_f1_score"),
    "mae": ("mae", "mean_absolute_error", "test_mae", "val_mae", "training_mean_absolute_error"),
    "rmse": ("rmse", "root_mean_squared_error", "test_rmse", "val_rmse", "training_root_mean_squared_error"),
}
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "mae": False, "rmse": False}


@dataclass(frozen=True)
class PerformanceOptions:
    max_delay: float = 3600.0
    """Seconds an actual may arrive after (or before) its prediction and still be joined."""
    max_pending: int = 100_000
    """Rows waiting on either side at most; the oldest are dropped beyond it (and counted)."""
    min_labelled: int = 200
    margin: float = 0.1
    task: str | None = None
    """classification or regression; None guesses from the values."""


@dataclass(frozen=True, slots=True)
class Labelled:
    time: float
    model: str | None
    version: str | None
    prediction: Any
    actual: Any


@dataclass
class Joiner:
    """Pairs predictions and actuals by id. Holds at most `max_pending` rows per side."""

    options: PerformanceOptions = field(default_factory=PerformanceOptions)
    predictions: OrderedDict[str, InferenceRecord] = field(default_factory=OrderedDict)
    actuals: OrderedDict[str, ActualRecord] = field(default_factory=OrderedDict)
    expired: int = 0
    """Predictions whose actual never came in time, plus rows dropped for room."""

    def add(self, records: Iterable[InferenceRecord | ActualRecord]) -> list[Labelled]:
        joined: list[Labelled] = []
        for record in records:
            if isinstance(record, ActualRecord):
                prediction = self.predictions.pop(record.id, None)
                if prediction is not None and abs(record.time - prediction.time) <= self.options.max_delay:
                    joined.append(_pair(prediction, record))
                elif prediction is None:
                    self._hold(self.actuals, record.id, record)
                else:
                    self.expired += 1
            elif record.id is not None:
                actual = self.actuals.pop(record.id, None)
                if actual is not None and abs(actual.time - record.time) <= self.options.max_delay:
                    joined.append(_pair(record, actual))
                else:
                    self._hold(self.predictions, record.id, record)
        return joined

    def _hold(self, pending: OrderedDict[str, Any], key: str, record: Any) -> None:
        pending[key] = record
        pending.move_to_end(key)
        while len(pending) > self.options.max_pending:
            pending.popitem(last=False)
            self.expired += 1

    def expire(self, now: float) -> None:
        """Forget rows older than `max_delay`: their other half will not be joined any more."""
        horizon = now - self.options.max_delay
        while self.predictions and next(iter(self.predictions.values())).time < horizon:
            self.predictions.popitem(last=False)
            self.expired += 1
        while self.actuals and next(iter(self.actuals.values())).time < horizon:
            self.actuals.popitem(last=False)


def _pair(prediction: InferenceRecord, actual: ActualRecord) -> Labelled:
    return Labelled(
        prediction.time, prediction.model, prediction.version, prediction.prediction, actual.actual
    )


def _label(prediction: Any) -> Any:
    if isinstance(prediction, dict):
        for key in ("label", "class", "prediction", "predicted_label"):
            if key in prediction:
                return prediction[key]
        return None
    return prediction_columns(prediction).get("prediction")


def guess_task(rows: Sequence[Labelled]) -> str:
    """Regression when the actuals are numbers and some are not whole; classification otherwise."""
    actuals = [r.actual for r in rows if r.actual is not None]
    if actuals and all(is_number(a) for a in actuals) and any(not float(a).is_integer() for a in actuals):
        return REGRESSION
    return CLASSIFICATION


@dataclass(frozen=True)
class PerformanceReport:
    version: str | None
    task: str
    labelled: int
    metrics: dict[str, float]
    training: dict[str, float]
    """Live metric -> the training run's value of it (only those the run logged)."""
    dropped: tuple[str, ...]
    """Metrics worse than training by more than the margin (only with enough labelled rows)."""
    enough: bool

    @property
    def performance_drop(self) -> bool:
        return bool(self.dropped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "task": self.task,
            "labelled": self.labelled,
            "enough": self.enough,
            "metrics": self.metrics,
            "training": self.training,
            "dropped": list(self.dropped),
        }


def training_metric(run_metrics: Mapping[str, float], live: str) -> float | None:
    for name in TRAINING_NAMES.get(live, ()):
        value = run_metrics.get(name)
        if value is not None and math.isfinite(value):
            return float(value)
    return None


def performance(
    rows: Sequence[Labelled],
    run_metrics: Mapping[str, float] | None = None,
    options: PerformanceOptions | None = None,
    version: str | None = None,
) -> PerformanceReport:
    """Metrics of labelled rows (of one version) compared with the training run's."""
    options = options or PerformanceOptions()
    task = options.task or guess_task(rows)
    metrics: dict[str, float] = {}
    usable = 0
    if task == CLASSIFICATION:
        pairs = [(category(_label(r.prediction)), category(r.actual)) for r in rows if r.actual is not None]
        pairs = [(p, a) for p, a in pairs if p != "None"]
        usable = len(pairs)
        if pairs:
            from sklearn.metrics import accuracy_score, f1_score

            predicted, actual = [p for p, _ in pairs], [a for _, a in pairs]
            metrics["accuracy"] = float(accuracy_score(actual, predicted))
            metrics["f1"] = float(f1_score(actual, predicted, average="macro", zero_division=0))
    else:
        values = [(_label(r.prediction), r.actual) for r in rows]
        numbers = [(float(p), float(a)) for p, a in values if is_number(p) and is_number(a)]
        numbers = [(p, a) for p, a in numbers if math.isfinite(p) and math.isfinite(a)]
        usable = len(numbers)
        if numbers:
            from sklearn.metrics import mean_absolute_error, mean_squared_error

            estimates, truths = [p for p, _ in numbers], [a for _, a in numbers]
            metrics["mae"] = float(mean_absolute_error(truths, estimates))
            metrics["rmse"] = float(mean_squared_error(truths, estimates) ** 0.5)
    training = {
        name: value for name in metrics if (value := training_metric(run_metrics or {}, name)) is not None
    }
    enough = usable >= options.min_labelled
    dropped = []
    if enough:
        for name, live in metrics.items():
            base = training.get(name)
            if base is None or base == 0:
                continue
            change = (base - live) / abs(base) if HIGHER_IS_BETTER[name] else (live - base) / abs(base)
            if change > options.margin:
                dropped.append(name)
    return PerformanceReport(version, task, usable, metrics, training, tuple(dropped), enough)
