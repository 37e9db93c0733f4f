"""The one-shot computation behind `mlops-console drift`: a log, a reference, a window -> verdicts.

The window ends at the newest record (or at `end`) and is found by a binary search, so the log is
never read whole; the version is the newest record's unless one is asked for. Without a reference,
the version's first `first_rows` rows still on disk are its reference, and the window starts after them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from mlops_console.core.quality.monitor import FirstRows, QualityMonitor, VersionKey
from mlops_console.core.quality.offsets import LogOffset, Tail
from mlops_console.core.quality.records import InferenceRecord, Record, format_time
from mlops_console.core.quality.reference import ReferenceProfile
from mlops_console.core.quality.schema import Signature
from mlops_console.core.quality.seek import last_record, offset_at, offset_at_start
from mlops_console.core.quality.sqlite_tail import SqliteTail
from mlops_console.core.quality.tail import LineTail
from mlops_console.core.quality.window import QualityOptions, VersionQuality

ReferenceFor = Callable[[str | None, str | None], ReferenceProfile]
"""(model, version) -> its reference; raises `sources.ReferenceError` (or a registry error) when it cannot."""
SignatureFor = Callable[[str | None, str | None], Signature | None]


def open_tail(
    path: str | os.PathLike[str], fmt: str = "jsonl", table: str | None = None
) -> LineTail | SqliteTail:
    if fmt == "sqlite":
        return SqliteTail(path, table or "")
    return LineTail(path, fmt)


@dataclass(frozen=True)
class DriftReport:
    log: str
    window: float
    end: float | None
    """The window's end; None when the log holds no scored row."""
    model: str | None
    version: str | None
    quality: VersionQuality | None
    signature: str
    """Where the input signature came from."""
    other_versions: dict[str, int] = field(default_factory=dict)
    """Rows of other versions in the window (not scored here)."""
    malformed: int = 0
    events: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "window_seconds": self.window,
            "end": format_time(self.end) if self.end is not None else None,
            "model": self.model,
            "version": self.version,
            "signature": self.signature,
            "other_versions": self.other_versions,
            "malformed_lines": self.malformed,
            "events": list(self.events),
            "quality": self.quality.to_dict() if self.quality else None,
        }


def _last(tail: LineTail | SqliteTail) -> InferenceRecord | None:
    return tail.last_record() if isinstance(tail, SqliteTail) else last_record(tail)


def _start_at(tail: LineTail | SqliteTail, at: float) -> LogOffset:
    return tail.offset_at(at) if isinstance(tail, SqliteTail) else offset_at(tail, at)


def _scan(tail: Tail, offset: LogOffset, sink: Callable[[list[Record]], bool]) -> tuple[int, list[str]]:
    """Read from `offset` until the log ends or `sink` says stop; (malformed, events)."""
    malformed, events = 0, list[str]()
    while True:
        batch = tail.read(offset)
        malformed += batch.malformed
        events.extend(batch.events)
        offset = batch.offset
        if not sink(list(batch.records)) or not batch.more:
            return malformed, events


def _first_rows_reference(tail: LineTail | SqliteTail, key: VersionKey, wanted: int, end: float) -> FirstRows:
    collector = FirstRows(wanted, key[1])
    start = LogOffset() if isinstance(tail, SqliteTail) else offset_at_start(tail)

    def take(records: list[Record]) -> bool:
        rows = [
            r
            for r in records
            if isinstance(r, InferenceRecord) and (r.model, r.version) == key and r.time <= end
        ]
        collector.add(rows)
        return not collector.complete

    _scan(tail, start, take)
    return collector


def drift_report(
    tail: LineTail | SqliteTail,
    *,
    window: float,
    reference_for: ReferenceFor | None = None,
    signature_for: SignatureFor | None = None,
    options: QualityOptions | None = None,
    end: float | None = None,
    version: str | None = None,
) -> DriftReport:
    """Per-feature drift scores, sample sizes and verdicts of one version over one window of the log."""
    options = replace(options or QualityOptions(), window=window)
    log = str(tail.path)
    newest = _last(tail)
    if newest is None:
        return DriftReport(log, window, None, None, version, None, "none")
    end = newest.time if end is None else end
    key: VersionKey = (newest.model, version if version is not None else newest.version)
    start = end - window
    reference: ReferenceProfile | None = None
    note = ""
    if reference_for is not None:
        reference = reference_for(*key)
    else:
        collector = _first_rows_reference(tail, key, options.first_rows, end)
        if collector.complete:
            start = max(start, collector.last or start)  # the reference's rows are not scored against it
            reference = collector.profile(bins=10)
        else:
            note = (
                f"no reference yet: {collector.rows} rows of version {key[1]} in the log, "
                f"{options.first_rows} needed to learn one"
            )
    signature = signature_for(*key) if signature_for is not None else None
    if signature is None and reference is not None:
        kinds = {name: profile.kind for name, profile in reference.features if name in reference.input_names}
        signature = Signature.from_columns(kinds, source="the reference's columns")
    monitor = QualityMonitor(options, learn_reference=False)
    if reference is not None:
        monitor.set_reference(key, reference)
    if signature is not None:
        monitor.set_signature(key, signature)
    others: dict[str, int] = {}

    def feed(records: list[Record]) -> bool:
        inside = [r for r in records if start < r.time <= end]
        for record in inside:
            if isinstance(record, InferenceRecord) and (record.model, record.version) != key:
                name = f"{record.model} v{record.version}" if record.model else f"v{record.version}"
                others[name] = others.get(name, 0) + 1
        monitor.add(r for r in inside if not isinstance(r, InferenceRecord) or (r.model, r.version) == key)
        return not records or records[-1].time <= end

    malformed, events = _scan(tail, _start_at(tail, start), feed)
    quality = monitor.window(key).evaluate(reference, end, note)
    described = signature.source if signature is not None else "none"
    # Following rotated files through a backlog is routine; only losses and truncations are news.
    news = tuple(e for e in events if not e.startswith("rotated:"))
    return DriftReport(log, window, end, key[0], key[1], quality, described, others, malformed, news)
