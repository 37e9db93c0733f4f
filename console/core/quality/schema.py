"""A model's MLflow signature, and the rows whose inputs break it.

The signature comes from the version's `MLmodel` file (`signature: {inputs: '[...]', outputs: '[...]'}`,
JSON text inside YAML), or, when the model has none, from the reference's columns. A row breaks the
input signature when a required column is missing or null, or a value has the wrong type (a string
where a number is expected, 2.5 where an integer is). Extra columns are counted but break nothing:
MLflow ignores them too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_console.core.quality.columns import is_missing, is_number

MISSING, NULL, TYPE = "missing", "null", "type"
MAX_EXTRA_COLUMNS = 50
"""Distinct unexpected column names counted per window (a hostile log must not grow this)."""


@dataclass(frozen=True)
class ColumnSpec:
    name: str | None
    type: str
    """An MLflow column type (double, long, string, ...) or `tensor` (then see `dtype` and `shape`)."""
    required: bool = True
    dtype: str | None = None
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "dtype": self.dtype,
            "shape": list(self.shape) if self.shape is not None else None,
        }


def _specs(raw: Any) -> tuple[ColumnSpec, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = json.loads(raw)
    if not isinstance(raw, list):
        raise ValueError("a signature's inputs and outputs are lists of column specs")
    specs = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ValueError(f"not a column spec: {item!r:.80}")
        tensor: dict[str, Any] = item["tensor-spec"] if isinstance(item.get("tensor-spec"), dict) else {}
        shape = tensor.get("shape")
        specs.append(
            ColumnSpec(
                name=item.get("name") if isinstance(item.get("name"), str) else None,
                type=item["type"],
                required=bool(item.get("required", True)),
                dtype=tensor.get("dtype") if isinstance(tensor.get("dtype"), str) else None,
                shape=tuple(int(s) for s in shape) if isinstance(shape, list) else None,
            )
        )
    return tuple(specs)


@dataclass(frozen=True)
class Signature:
    inputs: tuple[ColumnSpec, ...] = ()
    outputs: tuple[ColumnSpec, ...] = ()
    source: str = "MLmodel"

    @classmethod
    def from_mlflow(cls, data: Mapping[str, Any], source: str = "MLmodel") -> Signature:
        """From the `signature` mapping of an MLmodel file; ValueError if it is not one."""
        return cls(_specs(data.get("inputs")), _specs(data.get("outputs")), source)

    @classmethod
    def from_columns(cls, kinds: Mapping[str, str], source: str) -> Signature:
        """Every column required, `numeric` ones as doubles and the rest as strings."""
        inputs = tuple(
            ColumnSpec(name, "double" if kind == "numeric" else "string") for name, kind in kinds.items()
        )
        return cls(inputs, (), source)

    @property
    def named_inputs(self) -> tuple[ColumnSpec, ...]:
        return tuple(spec for spec in self.inputs if spec.name is not None and spec.type != "tensor")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }


def value_fits(value: Any, column_type: str) -> bool:
    """Whether a present value can be the MLflow column type (JSON has one number type, so 3.0 is a long)."""
    if column_type in ("double", "float"):
        return is_number(value)
    if column_type in ("long", "integer"):
        return is_number(value) and math.isfinite(value) and bool(float(value).is_integer())
    if column_type == "boolean":
        return isinstance(value, bool)
    if column_type in ("string", "binary", "datetime"):
        return isinstance(value, str) or (column_type == "datetime" and is_number(value))
    if column_type == "array":
        return isinstance(value, list)
    if column_type in ("object", "map"):
        return isinstance(value, dict)
    return True  # a type this console does not know: nothing to hold against the row


@dataclass
class InputProblems:
    """Counts over some rows; `add` folds in another window's counts (aggregates only, no values)."""

    rows: int = 0
    broken_rows: int = 0
    columns: dict[str, dict[str, int]] = field(default_factory=dict)
    """column -> {missing|null|type: rows}."""
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, other: InputProblems) -> None:
        self.rows += other.rows
        self.broken_rows += other.broken_rows
        for name, kinds in other.columns.items():
            mine = self.columns.setdefault(name, {})
            for kind, n in kinds.items():
                mine[kind] = mine.get(kind, 0) + n
        for name, n in other.extra.items():
            if name in self.extra or len(self.extra) < MAX_EXTRA_COLUMNS:
                self.extra[name] = self.extra.get(name, 0) + n

    @property
    def share(self) -> float | None:
        return self.broken_rows / self.rows if self.rows else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "broken_rows": self.broken_rows,
            "share": self.share,
            "columns": self.columns,
            "extra_columns": self.extra,
        }

    def summary(self, limit: int = 3) -> str:
        """`petal_width null in 120 rows; sepal_length type in 3 rows` (most frequent first)."""
        items = sorted(
            ((n, name, kind) for name, kinds in self.columns.items() for kind, n in kinds.items()),
            reverse=True,
        )
        return "; ".join(f"{name} {kind} in {n} rows" for n, name, kind in items[:limit])


ABSENT: Any = object()
"""A column's value in a row that lacks the key (unlike None, a value that is null)."""


def _masks(values: Sequence[Any], spec: ColumnSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(missing, null, wrong type) per row of one column."""
    size = len(values)
    nothing = np.zeros(size, dtype=bool)
    types = set(map(type, values))
    if types <= _NUMBERS:  # the common case, decided with whole-column operations
        floats = np.array(values, dtype=np.float64)
        null = np.isnan(floats)
        if spec.type in ("long", "integer"):
            return nothing, null, ~null & (np.isinf(floats) | (np.floor(floats) != floats))
        if spec.type in ("double", "float", "datetime") or spec.type not in _KNOWN:
            return nothing, null, nothing
        return nothing, null, ~null
    if types == {str}:
        fits = spec.type in ("string", "binary", "datetime") or spec.type not in _KNOWN
        return nothing, nothing, np.full(size, not fits)
    missing = np.fromiter((v is ABSENT for v in values), bool, size)
    null = np.fromiter((v is not ABSENT and is_missing(v) for v in values), bool, size)
    wrong = np.fromiter(
        (v is not ABSENT and not is_missing(v) and not value_fits(v, spec.type) for v in values), bool, size
    )
    return missing, null, wrong


_NUMBERS = frozenset({int, float})
_KNOWN = frozenset(
    {
        "double",
        "float",
        "long",
        "integer",
        "boolean",
        "string",
        "binary",
        "datetime",
        "array",
        "object",
        "map",
    }
)


def check_columns(signature: Signature, columns: Mapping[str, Sequence[Any]], rows: int) -> InputProblems:
    """Count the rows whose inputs break the signature's named input columns. `columns` hold one
    value per row, ABSENT where a row lacks the key."""
    problems = InputProblems(rows=rows)
    broken = np.zeros(rows, dtype=bool)
    expected = set()
    for spec in signature.named_inputs:
        assert spec.name is not None
        expected.add(spec.name)
        values = columns.get(spec.name)
        if values is None:
            kinds = {MISSING: rows} if spec.required and rows else {}
            broken[:] |= spec.required
        else:
            missing, null, wrong = _masks(values, spec)
            if not spec.required:
                missing[:] = False
                null[:] = False
            broken |= missing | null | wrong
            kinds = {MISSING: int(missing.sum()), NULL: int(null.sum()), TYPE: int(wrong.sum())}
        kinds = {kind: n for kind, n in kinds.items() if n}
        if kinds:
            problems.columns[spec.name] = kinds
    problems.broken_rows = int(broken.sum())
    if expected:
        for name, values in columns.items():
            if name not in expected and len(problems.extra) < MAX_EXTRA_COLUMNS:
                present = sum(1 for v in values if v is not ABSENT)
                if present:
                    problems.extra[name] = present
    return problems


def check_inputs(signature: Signature, rows: Iterable[Mapping[str, Any]]) -> InputProblems:
    """`check_columns` for rows given one by one."""
    listed = list(rows)
    names: dict[str, None] = {}
    for row in listed:
        names.update(dict.fromkeys(row))
    columns = {name: [row.get(name, ABSENT) for row in listed] for name in names}
    return check_columns(signature, columns, len(listed))
