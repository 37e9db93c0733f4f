"""Where a reference comes from: a CSV, Parquet or JSON-lines file, or an artifact of the served
version's training run (`artifact:reference.csv`), profiled at once so the rows are not kept.

Columns are features by name; `inputs.<name>` columns (a flattened log) count as `<name>`, a
`prediction` column is the prediction's reference, and `time`, `model`, `version`, `id` and `actual`
are ignored. At most `MAX_REFERENCE_ROWS` rows are read (the first ones of a CSV, a random sample of
a Parquet file), which pins the profile's precision far beyond what drift scores need.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlops_console.core.quality.columns import row_columns
from mlops_console.core.quality.offsets import LogOffset, TailError
from mlops_console.core.quality.records import INPUT_PREFIX, InferenceRecord
from mlops_console.core.quality.reference import DEFAULT_BINS, ReferenceProfile, profile_columns, profile_rows
from mlops_console.core.quality.tail import LineTail

ARTIFACT_PREFIX = "artifact:"
MAX_REFERENCE_ROWS = 200_000
IGNORED = frozenset({"time", "model", "version", "id", "actual"})
FetchArtifact = Callable[[str], bytes]
"""Reads one artifact of the served version's run by its path within the run; raises when it cannot."""


class ReferenceError(Exception):
    """The reference cannot be used; `str()` is one line that names it and says why."""


def artifact_name(spec: str) -> str | None:
    """`reference.csv` for `artifact:reference.csv`, None for a file path."""
    if spec.startswith(ARTIFACT_PREFIX):
        return spec[len(ARTIFACT_PREFIX) :].strip().lstrip("/")
    return None


def _frame_columns(frame: Any) -> dict[str, Any]:
    """A pandas frame's columns as float arrays (numbers) or lists, renamed and filtered."""
    import pandas as pd

    out: dict[str, Any] = {}
    for raw in frame.columns:
        name = str(raw)
        name = name[len(INPUT_PREFIX) :] if name.startswith(INPUT_PREFIX) else name
        if name in IGNORED:
            continue
        series = frame[raw]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            out[name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            out[name] = [None if pd.isna(v) else v for v in series.tolist()]
    return out


def _read_frame(data: bytes | Path, suffix: str) -> Any:
    import pandas as pd

    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(source)
        if len(frame) > MAX_REFERENCE_ROWS:
            frame = frame.sample(n=MAX_REFERENCE_ROWS, random_state=0)
        return frame
    return pd.read_csv(source, nrows=MAX_REFERENCE_ROWS)


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    tail, offset = LineTail(path), LogOffset()
    while len(rows) < MAX_REFERENCE_ROWS:
        batch = tail.read(offset)
        rows.extend(
            row_columns(r.inputs, r.prediction) for r in batch.records if isinstance(r, InferenceRecord)
        )
        offset = batch.offset
        if not batch.more:
            break
    return rows[:MAX_REFERENCE_ROWS]


def profile_data(data: bytes | Path, name: str, source: str, *, bins: int = DEFAULT_BINS) -> ReferenceProfile:
    """Profile a reference file (or an artifact's bytes) named `name`; its suffix says the format."""
    suffix = Path(name).suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson") and isinstance(data, Path):
            profile = profile_rows(_jsonl_rows(data), source=source, bins=bins)
        else:
            columns: Mapping[str, Any] = _frame_columns(_read_frame(data, suffix))
            profile = profile_columns(columns, source=source, bins=bins)
    except (OSError, TailError) as exc:
        raise ReferenceError(f"reference {source}: cannot read: {exc}") from None
    except (ValueError, ImportError) as exc:  # pandas' parser errors are ValueErrors
        raise ReferenceError(
            f"reference {source}: not a readable {suffix.lstrip('.') or 'CSV'} file: {exc}"
        ) from None
    if not profile.features or profile.rows == 0:
        raise ReferenceError(f"reference {source}: no rows")
    return profile


def load_reference(
    spec: str, fetch_artifact: FetchArtifact | None = None, *, bins: int = DEFAULT_BINS, described: str = ""
) -> ReferenceProfile:
    """The reference named by `spec`: `artifact:NAME` (read through `fetch_artifact`) or a file path.

    `described` says which run an artifact came from, for the profile's source.
    """
    name = artifact_name(spec)
    if name is not None:
        if not name:
            raise ReferenceError("reference artifact: no artifact path after 'artifact:'")
        if fetch_artifact is None:
            raise ReferenceError(
                f"reference {spec}: reading an artifact needs a registry ([registry] tracking_uri)"
            )
        data = fetch_artifact(name)
        return profile_data(data, name, f"{spec}{' of ' + described if described else ''}", bins=bins)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ReferenceError(f"reference {spec}: no such file")
    return profile_data(path, path.name, str(path), bins=bins)
