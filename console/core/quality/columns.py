"""From records to columns: feature values, missing values, categories and the prediction's columns.

Shared by the reference profile and the current window so both see a value the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

PREDICTION = "prediction"
OTHER = "(other)"
MAX_CATEGORIES = 100
"""Distinct categories kept per feature; rarer ones fold into `(other)`."""
MAX_CLASS_LABELS = 50
"""A numeric prediction with integral values and at most this many of them is a class label."""


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def category(value: Any) -> str:
    """One spelling per category: 1, 1.0 and "1" are the same class; booleans are true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float | str):
        return str(value)
    return repr(value)


def prediction_columns(prediction: Any) -> dict[str, Any]:
    """The columns a prediction contributes: a scalar as `prediction`; class probabilities as the
    predicted class (`prediction`, the index of the largest); an object's scalar fields as
    `prediction.<key>`."""
    if isinstance(prediction, list):
        if prediction and all(is_number(p) for p in prediction):
            best = max(
                range(len(prediction)),
                key=lambda i: -math.inf if math.isnan(prediction[i]) else prediction[i],
            )
            return {PREDICTION: best}
        return {PREDICTION: None}
    if isinstance(prediction, dict):
        return {
            f"{PREDICTION}.{key}": value
            for key, value in prediction.items()
            if value is None or isinstance(value, int | float | str | bool)
        }
    return {PREDICTION: prediction}


def numeric_kind(values: Iterable[Any]) -> bool:
    """True when every present value is a number (booleans and strings make a column categorical)."""
    return all(is_number(v) for v in values if not is_missing(v))


def looks_like_labels(values: Sequence[Any]) -> bool:
    """Integral numbers with few distinct values: a classifier's labels, to compare as categories."""
    present = [v for v in values if not is_missing(v)]
    if not present or not all(is_number(v) and float(v).is_integer() for v in present):
        return False
    return len(set(present)) <= MAX_CLASS_LABELS


def as_floats(values: Sequence[Any]) -> np.ndarray:
    """A float array with NaN for missing, non-numeric and non-finite values."""
    try:
        out: np.ndarray = np.array(values, dtype=np.float64)  # the common case: numbers and None only
    except (TypeError, ValueError):
        out = np.fromiter((float(v) if is_number(v) else math.nan for v in values), np.float64, len(values))
    out[~np.isfinite(out)] = math.nan
    return out


def count_categories(values: Iterable[Any]) -> tuple[dict[str, int], int]:
    """(category -> count, missing count)."""
    counts: dict[str, int] = {}
    missing = 0
    for v in values:
        if is_missing(v):
            missing += 1
        else:
            key = category(v)
            counts[key] = counts.get(key, 0) + 1
    return counts, missing


def fold_categories(counts: Mapping[str, int], keep: int = MAX_CATEGORIES) -> dict[str, int]:
    """The `keep` most frequent categories, the rest summed into `(other)`."""
    if len(counts) <= keep:
        return dict(counts)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    folded = dict(ranked[: keep - 1])
    folded[OTHER] = folded.get(OTHER, 0) + sum(c for _, c in ranked[keep - 1 :])
    return folded


def row_columns(inputs: Mapping[str, Any], prediction: Any) -> dict[str, Any]:
    """Inputs and prediction columns of one record, as one flat row."""
    return {**inputs, **prediction_columns(prediction)}
