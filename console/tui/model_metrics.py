"""Which way is better for a model's run metric, judged from its name.

Only names that say it plainly are judged: a loss or an error should fall, an accuracy or an F1 should
rise. Anything else (`score`, `n_samples`, a custom name) gets no judgement rather than a wrong one.
"""

from __future__ import annotations

import re
from typing import Literal

Judgement = Literal["better", "worse", "same"]

# Matched against the words of the metric name (runs of letters and digits).
LOWER_IS_BETTER = frozenset(
    {
        "loss",
        "logloss",
        "error",
        "err",
        "rmse",
        "mse",
        "mae",
        "mape",
        "smape",
        "rmsle",
        "msle",
        "brier",
        "wer",
        "cer",
        "perplexity",
        "latency",
    }
)
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "acc",
        "f1",
        "fbeta",
        "auc",
        "r2",
        "precision",
        "recall",
        "specificity",
        "sensitivity",
        "ndcg",
        "bleu",
        "rouge",
    }
)

_WORD = re.compile(r"[a-z0-9]+")


def direction(name: str) -> Literal["lower", "higher"] | None:
    """`lower` or `higher` is better for a metric of this name; None when the name does not say."""
    words = set(_WORD.findall(name.lower()))
    if words & LOWER_IS_BETTER:  # "mean_absolute_error", "val_loss", "error_rate"
        way: Literal["lower", "higher"] = "lower"
    elif words & HIGHER_IS_BETTER:  # "val_accuracy", "f1_score", "roc_auc"
        way = "higher"
    else:
        return None
    if "neg" in words:  # scikit-learn's scorers negate losses: "neg_mean_squared_error" should rise
        return "higher" if way == "lower" else "lower"
    return way


def judge(name: str, old: object, new: object) -> Judgement | None:
    """How `new` compares to `old` for this metric; None when unknown (no direction, missing value)."""
    if isinstance(old, bool) or isinstance(new, bool):
        return None
    if not isinstance(old, int | float) or not isinstance(new, int | float):
        return None
    way = direction(name)
    if way is None or old != old or new != new:  # NaN compares unequal to itself
        return None
    if new == old:
        return "same"
    rose = new > old
    return "better" if rose == (way == "higher") else "worse"
