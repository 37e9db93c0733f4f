"""The inference-log contract and its three encodings.

A public contract, kept stable: JSON lines, one record per scored row,

    {"time": "2026-11-28T07:00:00.123Z", "model": "iris", "version": "3",
     "inputs": {"sepal_length": 5.1, ...}, "prediction": 0}

`prediction` is a number, a string, a list of class probabilities or an object; `id` is optional (it
joins the row to its actual outcome); extra keys are ignored. An actual outcome arrives later, in the
same log or another, as `{"time": ..., "id": ..., "actual": ...}`. `time` is ISO 8601 (UTC when it has no
offset) or epoch seconds.

JSON has no NaN or Infinity. Python's `json` writes them anyway and reads them back, so bare `NaN`
tokens are accepted; a strict producer writes a non-finite prediction as the string `"NaN"`,
`"Infinity"` or `"-Infinity"`, which is read back as the number. A missing input is `null`.

CSV and SQLite hold the same columns flattened: `time`, `model`, `version`, `id`, one `inputs.<name>`
column per feature (or one `inputs` column holding a JSON object), `prediction` (a scalar or JSON text;
or `prediction.<key>` columns for an object) and `actual`. A row whose `actual` is set is an actual
outcome. CSV cells that parse as numbers are numbers, empty cells are null.

A request carrying the `X-Mlops-Console-Probe` header is one of the console's own synthetic probes: a
producer leaves it out of the log, since its fixed example rows would dilute the real traffic whose
drift is measured.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

PROBE_HEADER = "X-Mlops-Console-Probe"
"""Sent with every request of the engine's probes; `serve --log-inferences` does not log those."""
INPUT_PREFIX = "inputs."
PREDICTION_PREFIX = "prediction."
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass(frozen=True, slots=True)
class InferenceRecord:
    """One scored row. Treat `inputs` as read-only: records cross threads."""

    time: float
    """Epoch seconds."""
    inputs: Mapping[str, Any]
    prediction: Any
    model: str | None = None
    version: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True)
class ActualRecord:
    """The true outcome of the row with this `id`, known later."""

    time: float
    id: str
    actual: Any


Record = InferenceRecord | ActualRecord


def parse_time(value: Any) -> float | None:
    """Epoch seconds from an ISO 8601 string or a number; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str) or not value:
        return None
    return _parse_stamp(value)


@functools.lru_cache(maxsize=4096)
def _parse_stamp(value: str) -> float | None:
    """The rows of one request share their time stamp, so most calls are cache hits."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_time(epoch: float) -> str:
    """`2026-11-28T07:00:00.123Z`: the contract's time format."""
    stamp = datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)


def revive(value: Any) -> Any:
    """A prediction with the strings standing for non-finite numbers turned back into floats."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [revive(v) for v in value]
    if isinstance(value, dict):
        return {k: revive(v) for k, v in value.items()}
    return value


def record_from_json(obj: Any) -> Record | None:
    """A record from a decoded JSON line; None when the line is not one (the caller counts it)."""
    if not isinstance(obj, dict):
        return None
    at = parse_time(obj.get("time"))
    if at is None:
        return None
    if "inputs" not in obj and "actual" in obj:
        ident = _text(obj.get("id"))
        return ActualRecord(at, ident, obj["actual"]) if ident is not None else None
    inputs = obj.get("inputs")
    if not isinstance(inputs, dict) or "prediction" not in obj:
        return None
    return InferenceRecord(
        time=at,
        inputs=inputs,
        prediction=revive(obj["prediction"]),
        model=_text(obj.get("model")),
        version=_text(obj.get("version")),
        id=_text(obj.get("id")),
    )


def parse_json_line(line: bytes | str) -> Record | None:
    try:
        decoded = orjson.loads(line)
    except orjson.JSONDecodeError:
        # What orjson refuses but the contract accepts (bare NaN and Infinity), or what `json` refuses
        # as well: the standard parser decides. (orjson reads integers past 64 bits as floats.)
        try:
            decoded = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError and bad UTF-8 are ValueErrors
            return None
    return record_from_json(decoded)


def guess_cell(cell: Any) -> Any:
    """A CSV cell as the value it spells: empty is null, numbers are numbers, JSON arrays/objects decode."""
    if not isinstance(cell, str):
        return cell
    text = cell.strip()
    if not text:
        return None
    if text[0] in "[{":
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return cell
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return cell


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (ValueError, RecursionError):
            return value
    return value


def record_from_flat(row: Mapping[str, Any], *, guess_types: bool) -> Record | None:
    """A record from a CSV or SQLite row of flattened columns (see the module docstring).

    `guess_types` for CSV, whose cells are all text; SQLite cells keep the type they were stored with.
    """
    cell = guess_cell if guess_types else _maybe_json
    at = parse_time(cell(row.get("time")))
    if at is None:
        return None
    actual = cell(row.get("actual"))
    if actual is not None:
        ident = _text(cell(row.get("id")))
        return ActualRecord(at, ident, actual) if ident is not None else None
    inputs: dict[str, Any] = {}
    packed = cell(row.get("inputs"))
    if isinstance(packed, dict):
        inputs.update(packed)
    prediction_parts: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith(INPUT_PREFIX):
            inputs[key[len(INPUT_PREFIX) :]] = cell(value)
        elif key.startswith(PREDICTION_PREFIX):
            prediction_parts[key[len(PREDICTION_PREFIX) :]] = cell(value)
    if "prediction" in row:
        prediction = cell(row["prediction"])
    elif prediction_parts:
        prediction = prediction_parts
    else:
        return None
    if not inputs:
        return None
    return InferenceRecord(
        time=at,
        inputs=inputs,
        prediction=revive(prediction),
        model=_text(cell(row.get("model"))),
        version=_text(cell(row.get("version"))),
        id=_text(cell(row.get("id"))),
    )


def to_json_line(record: Record) -> str:
    """The contract's JSON line for a record (non-finite predictions as strings, missing inputs null)."""
    if isinstance(record, ActualRecord):
        return json.dumps({"time": format_time(record.time), "id": record.id, "actual": record.actual})
    body: dict[str, Any] = {
        "time": format_time(record.time),
        "model": record.model,
        "version": record.version,
    }
    if record.id is not None:
        body["id"] = record.id
    body["inputs"] = {k: json_value(v, missing=True) for k, v in record.inputs.items()}
    body["prediction"] = json_value(record.prediction, missing=False)
    return json.dumps(body, allow_nan=False, default=str)


def json_value(value: Any, *, missing: bool) -> Any:
    """`value` with every non-finite float replaced: by null when `missing` (an input that has no
    value), else by the string that stands for it (a prediction that is NaN is worth seeing)."""
    if isinstance(value, float) and not math.isfinite(value):
        if missing:
            return None
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list | tuple):
        return [json_value(v, missing=missing) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v, missing=missing) for k, v in value.items()}
    return value
