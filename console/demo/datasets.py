"""The demo's two real datasets, shared by the trainer and the traffic generator so that the
traffic sends rows with exactly the columns the models were trained on.

The trainer exports the rows as JSON; the traffic process then needs neither pandas nor sklearn,
which keeps it light next to the serving processes on a small machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

IRIS = "iris"
DIABETES = "diabetes"
MODELS = (IRIS, DIABETES)

_IRIS_COLUMNS = {
    "sepal length (cm)": "sepal_length",
    "sepal width (cm)": "sepal_width",
    "petal length (cm)": "petal_length",
    "petal width (cm)": "petal_width",
}

# column -> (scale, offset). Iris: longer, wider petals, so most flowers now look like virginica.
# Diabetes: a heavier, higher-blood-pressure population, so predicted progression rises.
_SHIFTS: dict[str, dict[str, tuple[float, float]]] = {
    IRIS: {"petal_length": (1.3, 2.0), "petal_width": (1.3, 0.8), "sepal_width": (1.0, -0.4)},
    DIABETES: {"bmi": (1.0, 0.06), "bp": (1.0, 0.04), "s5": (1.0, 0.04)},
}


def load_frame(model: str) -> tuple[pd.DataFrame, pd.Series]:
    """Features and target of the dataset a demo model is trained on."""
    from sklearn import datasets

    if model == IRIS:
        bunch = datasets.load_iris(as_frame=True)
        return bunch.data.rename(columns=_IRIS_COLUMNS), bunch.target
    if model == DIABETES:
        bunch = datasets.load_diabetes(as_frame=True)
        return bunch.data, bunch.target
    raise ValueError(f"unknown demo model {model!r}")


def rows_path(root: Path, model: str) -> Path:
    return root / "datasets" / f"{model}.json"


def export_rows(root: Path, model: str) -> Path:
    features, _ = load_frame(model)
    path = rows_path(root, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"columns": list(features.columns), "rows": features.round(6).values.tolist()}
    path.write_text(json.dumps(payload))
    return path


def load_rows(root: Path, model: str) -> tuple[list[str], list[list[float]]]:
    path = rows_path(root, model)
    if not path.exists():  # registry built by an older version: slow path, once
        export_rows(root, model)
    payload = json.loads(path.read_text())
    return payload["columns"], payload["rows"]


def shift_row(model: str, columns: list[str], row: list[float]) -> list[float]:
    """A covariate shift strong enough that the prediction mix visibly moves."""
    shifts = _SHIFTS.get(model, {})
    return [
        round(value * shifts[col][0] + shifts[col][1], 6) if col in shifts else value
        for col, value in zip(columns, row, strict=True)
    ]
