"""`serve --log-inferences PATH`: one JSON line per scored row, written off the request path.

A request hands its parsed inputs and raw predictions to a bounded queue (a `put_nowait`, nothing
else); a writer thread samples rows, turns them into the contract's records (see
`mlops_console.core.quality.records`), appends them in batches, and rotates the file when the next
batch would take it over `max_bytes`: PATH becomes PATH.1, PATH.1 becomes PATH.2, ... and the oldest
beyond `backups` is removed. When the writer falls behind (a slow disk), rows are dropped rather than
slowing the scoring down or growing memory, and counted in `/metrics`.
"""

from __future__ import annotations

import json
import os
import queue
import random
import sys
import threading
from collections.abc import Callable, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_console.core.quality.records import format_time, json_value

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_BACKUPS = 5
MAX_PENDING_ROWS = 200_000
"""Rows waiting for the writer at most; beyond it new rows are dropped (and counted)."""
FILE_MODE = 0o640


@dataclass(frozen=True)
class Scored:
    """One scored request, as handed to the writer (the frame is the request's own, never reused)."""

    at: float
    model: str | None
    version: str | None
    data: Any
    predictions: Any
    request_id: str | None
    rows: int


def count_rows(data: Any) -> int:
    """Rows in a scoring input (a DataFrame, a dict of columns, an array, a list); 1 for anything else."""
    try:
        if isinstance(data, dict):
            first = next(iter(data.values()), None)
            return len(first) if isinstance(first, Sized) and not isinstance(first, str) else 1
        return len(data) if not isinstance(data, str | bytes) else 1
    except TypeError:
        return 1


def _input_rows(data: Any, keep: list[int]) -> list[dict[str, Any]] | None:
    """The kept rows of a scoring input as {column: value}, or None for a shape we cannot split."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data.iloc[keep]
        return [{str(k): v for k, v in row.items()} for row in frame.to_dict(orient="records")]
    if isinstance(data, dict):
        columns = {str(k): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in data.items()}
        return [{k: v[i] if isinstance(v, list) else v for k, v in columns.items()} for i in keep]
    if isinstance(data, np.ndarray):
        rows = data.tolist()
        return [_as_row(rows[i]) for i in keep]
    if isinstance(data, list):
        return [_as_row(data[i]) for i in keep]
    return None


def _as_row(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return {"0": value}


def _predictions(predictions: Any, rows: int) -> list[Any] | None:
    """One prediction per input row, or None when the model's answer does not split that way."""
    import numpy as np
    import pandas as pd

    if isinstance(predictions, pd.DataFrame):
        values: Any = predictions.to_dict(orient="records")
    elif isinstance(predictions, pd.Series | np.ndarray):
        values = predictions.tolist()
    elif isinstance(predictions, dict):
        columns = {str(k): (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in predictions.items()}
        if not all(isinstance(v, list) and len(v) == rows for v in columns.values()):
            return [predictions] if rows == 1 else None
        values = [{k: v[i] for k, v in columns.items()} for i in range(rows)]
    elif isinstance(predictions, list):
        values = predictions
    else:
        values = [predictions] if rows == 1 else None
    if not isinstance(values, list) or len(values) != rows:
        return None
    return values


class InferenceLog:
    """The writer of one inference log. `submit` is called on the event loop; everything else runs in
    the writer thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample: float = 1.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        on_rows: Callable[[str, int], None] | None = None,
        max_pending_rows: int = MAX_PENDING_ROWS,
    ) -> None:
        if not 0.0 < sample <= 1.0:
            raise ValueError("the sample rate must be above 0 and at most 1")
        self.path = Path(path)
        self.sample = sample
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self.on_rows: Callable[[str, int], None] = on_rows or (lambda outcome, n: None)
        """Told how many rows were written, sampled out, dropped...: set before the first `submit`."""
        self._queue: queue.SimpleQueue[Scored | None] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._max_pending = max_pending_rows
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._failing = False
        self._thread.start()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)

    # -- the request side -------------------------------------------------------------------------------
    def submit(self, scored: Scored) -> None:
        with self._pending_lock:
            if self._pending + scored.rows > self._max_pending:
                self.on_rows("dropped", scored.rows)
                return
            self._pending += scored.rows
        self._queue.put(scored)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the writer thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                batch = [item]
                while item is not None and len(batch) < 256:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                scored = [b for b in batch if b is not None]
                if scored:
                    self._write(scored)
                if None in batch:
                    return
        finally:
            os.close(self._fd)

    def _write(self, batch: list[Scored]) -> None:
        lines: list[bytes] = []
        for scored in batch:
            with self._pending_lock:
                self._pending -= scored.rows
            lines.extend((text + "\n").encode("utf-8") for text in self._lines(scored))
        # Whole lines per write, and a rotation wherever the next line would pass the cap.
        chunk: list[bytes] = []
        room = self.max_bytes - self._size
        for data in lines:
            if chunk and len(data) > room:
                self._append(chunk)
                chunk, room = [], self.max_bytes - self._size
            if len(data) > room and self._size > 0:
                self._rotate()
                room = self.max_bytes - self._size
            chunk.append(data)
            room -= len(data)
        if chunk:
            self._append(chunk)

    def _append(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            self._size += len(data)
            self.on_rows("written", len(lines))
            self._failing = False
        except OSError as exc:
            self.on_rows("error", len(lines))
            self._complain(f"cannot write: {exc.strerror}")

    def _lines(self, scored: Scored) -> list[str]:
        try:
            return self._records(scored)
        except Exception as exc:  # a model answer of a shape nobody foresaw must not stop the writer
            self.on_rows("unsplittable", scored.rows)
            self._complain(f"cannot log a scored request ({type(exc).__name__}: {exc})")
            return []

    def _complain(self, message: str) -> None:
        if not self._failing:  # one line per failure spell, not one per batch
            print(f"serve: inference log {self.path}: {message}", file=sys.stderr, flush=True)
        self._failing = True

    def _records(self, scored: Scored) -> list[str]:
        keep = [i for i in range(scored.rows) if self.sample >= 1.0 or random.random() < self.sample]
        if len(keep) < scored.rows:
            self.on_rows("sampled_out", scored.rows - len(keep))
        if not keep:
            return []
        inputs = _input_rows(scored.data, keep)
        predictions = _predictions(scored.predictions, scored.rows)
        if inputs is None or predictions is None:
            self.on_rows("unsplittable", len(keep))
            return []
        stamp = format_time(scored.at)
        lines = []
        for row, index in zip(inputs, keep, strict=True):
            record: dict[str, Any] = {"time": stamp, "model": scored.model, "version": scored.version}
            if scored.request_id is not None:
                record["id"] = scored.request_id if scored.rows == 1 else f"{scored.request_id}:{index}"
            record["inputs"] = {k: json_value(v, missing=True) for k, v in row.items()}
            record["prediction"] = json_value(predictions[index], missing=False)
            lines.append(json.dumps(record, allow_nan=False, default=str))
        return lines

    def _rotate(self) -> None:
        """PATH.k -> PATH.k+1 (the oldest removed), PATH -> PATH.1, a new PATH. On failure the
        current file is kept and grows past the cap rather than losing rows."""
        try:
            self.path.with_name(f"{self.path.name}.{self.backups}").unlink(missing_ok=True)
            for number in range(self.backups - 1, 0, -1):
                source = self.path.with_name(f"{self.path.name}.{number}")
                if source.exists():
                    source.rename(self.path.with_name(f"{self.path.name}.{number + 1}"))
            self.path.rename(self.path.with_name(f"{self.path.name}.1"))
        except OSError as exc:
            self._complain(f"cannot rotate: {exc.strerror}")
            return
        os.close(self._fd)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size
