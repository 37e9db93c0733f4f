"""The current window of one model version, bounded in time and rows, and what is kept of it.

Rows arrive in chunks (one per log read). Each chunk keeps its column values in memory only while it
is inside the window, together with the input-schema and prediction checks made as it arrived; the
stuck-model detector sees every row in order. `evaluate` scores the window and returns aggregates:
bin counts, scores, problem counts and the prediction mix, never an input value.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlops_console.core.quality.columns import (
    PREDICTION,
    as_floats,
    count_categories,
    fold_categories,
    prediction_columns,
)
from mlops_console.core.quality.drift import DriftOptions, DriftResult, score_window
from mlops_console.core.quality.performance import PerformanceReport
from mlops_console.core.quality.predictions import PredictionProblems, StuckDetector, prediction_problems
from mlops_console.core.quality.records import InferenceRecord, format_time
from mlops_console.core.quality.reference import ReferenceProfile, is_prediction
from mlops_console.core.quality.schema import ABSENT, InputProblems, Signature, check_columns

_NUMERIC_TYPES = frozenset({int, float})
_NUMERIC_OR_NOTHING = _NUMERIC_TYPES | {type(None), type(ABSENT)}
MIX_CLASSES = 20


@dataclass(frozen=True)
class QualityOptions:
    window: float = 900.0
    """Seconds of rows in the current window."""
    max_rows: int = 50_000
    """Rows kept in a window at most (the oldest chunks go first): memory stays bounded."""
    drift: DriftOptions = field(default_factory=DriftOptions)
    stuck_rows: int = 50
    first_rows: int = 1500
    """Without a reference, the first this many rows of a version become its reference (more than
    `drift.min_reference`, so a few missing values do not leave a feature without a verdict)."""


def _column(values: list[Any]) -> np.ndarray | list[Any]:
    """Numbers as a float array (cheap to keep and to score; nulls and absent values as NaN),
    anything else as a list (absent values as None)."""
    types = set(map(type, values))
    if types <= _NUMERIC_TYPES:
        return np.array(values, dtype=np.float64)
    if types <= _NUMERIC_OR_NOTHING:
        return as_floats([None if v is ABSENT else v for v in values])
    return [None if v is ABSENT else v for v in values]


def _gather(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Rows to columns. Logged rows nearly always share their keys: then one C-level getter per row
    and a transpose do it (several times faster than a lookup per value, which runs otherwise)."""
    if not rows:
        return {}
    names = list(rows[0])
    if names and all(len(row) == len(names) for row in rows):
        getter = operator.itemgetter(*names)
        try:
            values = [getter(row) for row in rows]
        except KeyError:
            pass
        else:
            if len(names) == 1:
                return {names[0]: values}
            return {name: list(column) for name, column in zip(names, zip(*values, strict=True), strict=True)}
    every: dict[str, None] = {}
    for row in rows:
        every.update(dict.fromkeys(row))
    return {name: [row.get(name, ABSENT) for row in rows] for name in every}


def raw_columns(records: Sequence[InferenceRecord]) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """(input columns, prediction columns) of records, ABSENT where a record lacks the key."""
    return _gather([r.inputs for r in records]), _gather([prediction_columns(r.prediction) for r in records])


def to_columns(records: Sequence[InferenceRecord]) -> dict[str, list[Any]]:
    """Inputs and prediction columns of records, a missing key as None."""
    inputs, predictions = raw_columns(records)
    both = {**inputs, **predictions}
    return {name: [None if v is ABSENT else v for v in values] for name, values in both.items()}


@dataclass
class _Chunk:
    times: np.ndarray
    columns: dict[str, np.ndarray | list[Any]]
    inputs: InputProblems | None
    predictions: PredictionProblems

    @property
    def end(self) -> float:
        return float(self.times.max())


@dataclass(frozen=True)
class VersionQuality:
    """One window of one version, evaluated. `to_dict` is the aggregate worth keeping."""

    model: str | None
    version: str | None
    start: float
    end: float
    rows: int
    drift: DriftResult | None
    reference: str
    """Where the reference came from, or why there is none yet."""
    inputs: InputProblems | None
    predictions: PredictionProblems
    stuck: dict[str, Any]
    prediction_mix: dict[str, Any]
    performance: PerformanceReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "window": {"start": format_time(self.start), "end": format_time(self.end)},
            "rows": self.rows,
            "reference": self.reference,
            "drift": self.drift.to_dict() if self.drift else None,
            "inputs": self.inputs.to_dict() if self.inputs else None,
            "predictions": self.predictions.to_dict(),
            "stuck": self.stuck,
            "prediction_mix": self.prediction_mix,
            "performance": self.performance.to_dict() if self.performance else None,
        }


def prediction_mix(columns: Mapping[str, np.ndarray | list[Any]]) -> dict[str, Any]:
    """Class shares of a label prediction, or the spread of a numeric score."""
    values = columns.get(PREDICTION)
    if values is None:
        return {}
    if isinstance(values, np.ndarray) and not np.all(np.isnan(values) | (values == np.round(values))):
        present = values[~np.isnan(values)]
        if present.size == 0:
            return {"kind": "numeric", "count": 0}
        p5, p50, p95 = np.quantile(present, [0.05, 0.5, 0.95]).tolist()
        return {
            "kind": "numeric",
            "count": int(present.size),
            "mean": float(present.mean()),
            "p5": p5,
            "p50": p50,
            "p95": p95,
        }
    listed = values.tolist() if isinstance(values, np.ndarray) else values
    counts, missing = count_categories(listed)
    total = sum(counts.values())
    folded = fold_categories(counts, MIX_CLASSES)
    shares = {k: n / total for k, n in sorted(folded.items(), key=lambda kv: -kv[1])} if total else {}
    return {"kind": "classes", "count": total, "missing": missing, "shares": shares}


class VersionWindow:
    """Rows of one model version within the last `options.window` seconds (at most `max_rows`)."""

    def __init__(
        self,
        model: str | None,
        version: str | None,
        options: QualityOptions | None = None,
        signature: Signature | None = None,
    ) -> None:
        self.model, self.version = model, version
        self.options = options or QualityOptions()
        self.signature = signature
        self.stuck = StuckDetector(self.options.stuck_rows)
        self._chunks: deque[_Chunk] = deque()
        self.rows_seen = 0
        self.last_time = float("-inf")

    @property
    def rows(self) -> int:
        return sum(chunk.times.size for chunk in self._chunks)

    def add(self, records: Sequence[InferenceRecord]) -> None:
        if not records:
            return
        problems = PredictionProblems()
        for record in records:
            self.stuck.update(record.inputs, record.prediction)
            problems.record(prediction_problems(record.prediction, self.signature))
        raw_inputs, raw_predictions = raw_columns(records)
        inputs = check_columns(self.signature, raw_inputs, len(records)) if self.signature else None
        columns = {name: _column(values) for name, values in {**raw_inputs, **raw_predictions}.items()}
        times = np.fromiter((r.time for r in records), np.float64, len(records))
        self._chunks.append(_Chunk(times, columns, inputs, problems))
        self.rows_seen += len(records)
        self.last_time = max(self.last_time, float(times.max()))
        self._trim(self.last_time)

    def _trim(self, now: float) -> None:
        horizon = now - self.options.window
        while self._chunks and self._chunks[0].end <= horizon:
            self._chunks.popleft()
        total = self.rows
        while len(self._chunks) > 1 and total - self._chunks[0].times.size >= self.options.max_rows:
            total -= self._chunks.popleft().times.size

    def columns(self, end: float) -> tuple[dict[str, np.ndarray | list[Any]], int, float]:
        """The window ending at `end`: (columns, rows, first row's time)."""
        start = end - self.options.window
        parts: dict[str, list[np.ndarray | list[Any]]] = {}
        masks: list[np.ndarray] = []
        chunks = [c for c in self._chunks if c.end > start]
        for chunk in chunks:
            masks.append((chunk.times > start) & (chunk.times <= end))
        rows = int(sum(int(m.sum()) for m in masks))
        names: dict[str, None] = {}
        for chunk in chunks:
            names.update(dict.fromkeys(chunk.columns))
        for name in names:
            parts[name] = []
            for chunk, mask in zip(chunks, masks, strict=True):
                values = chunk.columns.get(name)
                if values is None:
                    values = np.full(chunk.times.size, np.nan)
                if isinstance(values, np.ndarray):
                    parts[name].append(values[mask])
                else:
                    parts[name].append([v for v, keep in zip(values, mask, strict=True) if keep])
        merged: dict[str, np.ndarray | list[Any]] = {}
        for name, pieces in parts.items():
            if all(isinstance(p, np.ndarray) for p in pieces):
                merged[name] = np.concatenate(pieces) if pieces else np.empty(0)
            else:
                merged[name] = [v for p in pieces for v in (p.tolist() if isinstance(p, np.ndarray) else p)]
        first = min(
            (float(c.times[m].min()) for c, m in zip(chunks, masks, strict=True) if m.any()), default=end
        )
        return merged, rows, first

    def evaluate(
        self, reference: ReferenceProfile | None, end: float, reference_note: str = ""
    ) -> VersionQuality:
        columns, rows, first = self.columns(end)
        start = end - self.options.window
        drift = score_window(reference, columns, self.options.drift) if reference is not None else None
        inputs = None
        predictions = PredictionProblems()
        for chunk in self._chunks:
            if chunk.end > start and float(chunk.times.min()) <= end:
                predictions.add(chunk.predictions)
                if chunk.inputs is not None:
                    inputs = inputs or InputProblems()
                    inputs.add(chunk.inputs)
        note = reference.source if reference is not None else (reference_note or "no reference")
        return VersionQuality(
            model=self.model,
            version=self.version,
            start=first if rows else start,
            end=end,
            rows=rows,
            drift=drift,
            reference=note,
            inputs=inputs,
            predictions=predictions,
            stuck=self.stuck.to_dict(),
            prediction_mix=prediction_mix({k: v for k, v in columns.items() if is_prediction(k)}),
        )
