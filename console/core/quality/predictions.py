"""Invalid predictions beyond the answer's shape, and a model stuck on one answer.

A prediction is invalid when it holds NaN or an infinity; when it is a list of class probabilities
(the log contract's meaning of a list) with a value outside [0, 1] or a sum other than 1; or when it
does not fit the model's output signature (a string where the model declares numbers, a list of the
wrong length, an object without a declared column).

A model is stuck when it gives the same prediction for at least `stuck_rows` consecutive rows while
their inputs vary (identical inputs may well deserve identical answers). A classifier whose traffic
is almost all one class can meet that honestly: raise `stuck_rows` for it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_console.core.quality.columns import is_number
from mlops_console.core.quality.schema import ColumnSpec, Signature, value_fits

NON_FINITE, OUT_OF_RANGE, NOT_SUMMING, SIGNATURE = (
    "non-finite",
    "probability outside [0, 1]",
    "probabilities not summing to 1",
    "signature",
)
STUCK_ROWS = 50
SUM_TOLERANCE = 1e-3
MAX_EXAMPLES = 3


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


_TENSOR_KINDS = {
    "int": "long",
    "uint": "long",
    "float": "double",
    "bool": "boolean",
    "str": "string",
    "object": "string",
}


def _tensor_type(dtype: str | None) -> str | None:
    """The column type a tensor dtype's element is checked as (int64 -> long, float32 -> double)."""
    if not dtype:
        return None
    for prefix, kind in _TENSOR_KINDS.items():
        if dtype.startswith(prefix):
            return kind
    return None


def signature_problem(prediction: Any, outputs: tuple[ColumnSpec, ...]) -> str | None:
    """Why a prediction does not fit the output signature, or None."""
    if not outputs:
        return None
    if len(outputs) == 1 and (outputs[0].type == "tensor" or outputs[0].name is None):
        spec = outputs[0]
        if spec.type == "tensor":
            width = spec.shape[1] if spec.shape and len(spec.shape) == 2 and spec.shape[1] > 0 else None
            element = _tensor_type(spec.dtype)
            if spec.shape is not None and len(spec.shape) >= 2:
                if not isinstance(prediction, list):
                    got = type(prediction).__name__
                    return f"expected a list per row ({spec.dtype} tensor {list(spec.shape)}), got {got}"
                if width is not None and len(prediction) != width:
                    return f"expected {width} values per row, got {len(prediction)}"
                values = prediction
            else:
                values = [prediction]
            finite = [v for v in values if not (isinstance(v, float) and not math.isfinite(v))]
            if element and not all(value_fits(v, element) for v in finite):
                return f"expected {spec.dtype} values, got {json.dumps(prediction, default=str)[:60]}"
            return None
        if not value_fits(prediction, spec.type) and not isinstance(prediction, dict):
            return f"expected a {spec.type}, got {type(prediction).__name__}"
        return None
    if not isinstance(prediction, dict):
        names = ", ".join(s.name or "?" for s in outputs)
        return f"expected an object with {names}, got {type(prediction).__name__}"
    for spec in outputs:
        if spec.name is None:
            continue
        if spec.name not in prediction:
            if spec.required:
                return f"output column {spec.name} is missing"
            continue
        value = prediction[spec.name]
        if value is not None and not value_fits(value, spec.type):
            return f"output column {spec.name}: expected a {spec.type}, got {type(value).__name__}"
    return None


def prediction_problems(prediction: Any, signature: Signature | None) -> list[tuple[str, str]]:
    """(kind, detail) for everything wrong with one prediction; empty when it is valid."""
    found: list[tuple[str, str]] = []
    if _non_finite(prediction):
        found.append(
            (NON_FINITE, f"prediction holds NaN or an infinity: {json.dumps(prediction, default=str)[:60]}")
        )
    if isinstance(prediction, list) and prediction and all(is_number(p) for p in prediction):
        finite = [float(p) for p in prediction if math.isfinite(p)]
        if any(p < 0.0 or p > 1.0 for p in finite):
            found.append((OUT_OF_RANGE, f"class probability outside [0, 1]: {json.dumps(prediction)[:60]}"))
        elif len(finite) == len(prediction) and abs(sum(finite) - 1.0) > SUM_TOLERANCE:
            found.append((NOT_SUMMING, f"class probabilities sum to {sum(finite):.4g}, not 1"))
    if signature is not None:
        problem = signature_problem(prediction, signature.outputs)
        if problem:
            found.append((SIGNATURE, problem))
    return found


@dataclass
class PredictionProblems:
    rows: int = 0
    invalid_rows: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def record(self, problems: list[tuple[str, str]]) -> None:
        self.rows += 1
        if not problems:
            return
        self.invalid_rows += 1
        for kind, detail in problems:
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if len(self.examples) < MAX_EXAMPLES and detail not in self.examples:
                self.examples.append(detail)

    def add(self, other: PredictionProblems) -> None:
        self.rows += other.rows
        self.invalid_rows += other.invalid_rows
        for kind, n in other.kinds.items():
            self.kinds[kind] = self.kinds.get(kind, 0) + n
        for example in other.examples:
            if len(self.examples) < MAX_EXAMPLES and example not in self.examples:
                self.examples.append(example)

    @property
    def share(self) -> float | None:
        return self.invalid_rows / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "invalid_rows": self.invalid_rows,
            "share": self.share,
            "kinds": self.kinds,
            "examples": self.examples,
        }


def _key(prediction: Any) -> str:
    """The prediction as JSON text (what is persisted); labels and scores take a shortcut."""
    kind = type(prediction)
    if kind is int or (kind is float and math.isfinite(prediction)):
        return repr(prediction)
    return json.dumps(prediction, sort_keys=True, default=str, allow_nan=True)


def _digest(value: Any) -> str:
    """A short fingerprint: the detector keeps no inputs, only whether they changed."""
    text = json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass
class StuckDetector:
    """Run length of identical consecutive predictions; state is small and can be persisted."""

    stuck_rows: int = STUCK_ROWS
    prediction: str | None = None
    """The repeated prediction, as JSON text."""
    run: int = 0
    first_inputs: str | None = None
    inputs_varied: bool = False
    longest: int = 0
    """Longest run with varying inputs seen."""
    _first: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """The run's first inputs, held in memory only (a fingerprint is what gets persisted)."""

    def update(self, inputs: Mapping[str, Any], prediction: Any) -> None:
        key = _key(prediction)
        if key == self.prediction:
            self.run += 1
            if not self.inputs_varied:
                if self._first is not None:
                    self.inputs_varied = inputs != self._first
                else:  # restored from a persisted state: only the fingerprint is known
                    self.inputs_varied = _digest(inputs) != self.first_inputs
        else:
            self.prediction, self.run, self.inputs_varied = key, 1, False
            self._first, self.first_inputs = inputs, None
        if self.inputs_varied:
            self.longest = max(self.longest, self.run)

    @property
    def stuck(self) -> bool:
        """Stuck now: the current run is long enough and its inputs varied."""
        return self.inputs_varied and self.run >= self.stuck_rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "stuck": self.stuck,
            "stuck_rows": self.stuck_rows,
            "prediction": self.prediction,
            "run": self.run,
            "inputs_varied": self.inputs_varied,
            "longest": self.longest,
            "first_inputs": self.first_inputs if self._first is None else _digest(self._first),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StuckDetector:
        return cls(
            stuck_rows=int(data.get("stuck_rows", STUCK_ROWS)),
            prediction=data.get("prediction"),
            run=int(data.get("run", 0)),
            first_inputs=data.get("first_inputs"),
            inputs_varied=bool(data.get("inputs_varied", False)),
            longest=int(data.get("longest", 0)),
        )
