"""One endpoint's model quality: a window per model version, references, and the actuals joiner.

The engine (and the one-shot report) feed it what a tail read returned and ask it to evaluate; it
does no I/O. A version without a given reference gets one from its own first rows: those rows build
the profile and are not scored against it, so the window starts where the reference ends.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlops_console.core.quality.performance import Joiner, Labelled, PerformanceOptions, performance
from mlops_console.core.quality.records import ActualRecord, InferenceRecord, Record, format_time
from mlops_console.core.quality.reference import ReferenceProfile, profile_columns
from mlops_console.core.quality.schema import Signature
from mlops_console.core.quality.window import QualityOptions, VersionQuality, VersionWindow, to_columns

VersionKey = tuple[str | None, str | None]
"""(model, version) as the log names them."""


@dataclass
class FirstRows:
    """Collects a version's first rows until there are enough for a reference (then forgets them)."""

    wanted: int
    version: str | None = None
    columns: dict[str, list[Any]] = field(default_factory=dict)
    rows: int = 0
    first: float | None = None
    last: float | None = None

    def add(self, records: list[InferenceRecord]) -> list[InferenceRecord]:
        """Take rows until enough; return the ones left over (they belong to the window)."""
        take = records[: max(self.wanted - self.rows, 0)]
        if take:
            for name, values in to_columns(take).items():
                column = self.columns.setdefault(name, [None] * self.rows)
                column.extend(values)
            self.rows += len(take)
            for column in self.columns.values():
                column.extend([None] * (self.rows - len(column)))
            self.first = take[0].time if self.first is None else self.first
            self.last = take[-1].time
        return records[len(take) :]

    @property
    def complete(self) -> bool:
        return self.rows >= self.wanted

    def profile(self, bins: int = 10) -> ReferenceProfile:
        span = f"{format_time(self.first or 0)} to {format_time(self.last or 0)}"
        source = f"first {self.rows} rows of version {self.version} ({span})"
        built = profile_columns(self.columns, source=source, bins=bins)
        self.columns = {}  # the raw rows are not kept once profiled
        return built


class QualityMonitor:
    def __init__(
        self,
        options: QualityOptions | None = None,
        performance: PerformanceOptions | None = None,
        *,
        learn_reference: bool = True,
    ) -> None:
        self.options = options or QualityOptions()
        self.learn_reference = learn_reference
        self.windows: dict[VersionKey, VersionWindow] = {}
        self.references: dict[VersionKey, ReferenceProfile] = {}
        self.signatures: dict[VersionKey, Signature] = {}
        self.collecting: dict[VersionKey, FirstRows] = {}
        self.performance_options = performance or PerformanceOptions()
        self.joiner = Joiner(self.performance_options)
        self.labelled: dict[VersionKey, deque[Labelled]] = {}
        self.training: dict[VersionKey, dict[str, float]] = {}

    def set_training_metrics(self, key: VersionKey, metrics: Mapping[str, float]) -> None:
        """The metrics logged on the version's training run: the yardstick for live performance."""
        self.training[key] = dict(metrics)

    def set_reference(self, key: VersionKey, reference: ReferenceProfile) -> None:
        self.references[key] = reference
        self.collecting.pop(key, None)

    def set_signature(self, key: VersionKey, signature: Signature) -> None:
        self.signatures[key] = signature
        if key in self.windows:
            self.windows[key].signature = signature

    def window(self, key: VersionKey) -> VersionWindow:
        if key not in self.windows:
            self.windows[key] = VersionWindow(key[0], key[1], self.options, self.signatures.get(key))
        return self.windows[key]

    def add(self, records: Iterable[Record]) -> None:
        """Route records: scored rows to their version's window (or first-rows reference), actuals
        and identified rows to the joiner."""
        by_version: dict[VersionKey, list[InferenceRecord]] = {}
        joinable: list[InferenceRecord | ActualRecord] = []
        for record in records:
            if isinstance(record, ActualRecord):
                joinable.append(record)
                continue
            by_version.setdefault((record.model, record.version), []).append(record)
            if record.id is not None:
                joinable.append(record)
        for key, rows in by_version.items():
            if key not in self.references and self.learn_reference:
                collector = self.collecting.setdefault(key, FirstRows(self.options.first_rows, key[1]))
                rows = collector.add(rows)
                if collector.complete:
                    self.references[key] = collector.profile()
                    del self.collecting[key]
            self.window(key).add(rows)
        for pair in self.joiner.add(joinable):
            key = (pair.model, pair.version)
            if key not in self.labelled:
                self.labelled[key] = deque(maxlen=self.options.max_rows)
            self.labelled[key].append(pair)

    def reference_note(self, key: VersionKey) -> str:
        collector = self.collecting.get(key)
        if collector is not None:
            return (
                f"collecting the first {collector.wanted} rows of version {key[1]} as reference "
                f"({collector.rows} so far)"
            )
        return "no reference"

    def evaluate(self, end: float) -> list[VersionQuality]:
        """Every version with rows in the window ending at `end`, the newest rows first."""
        self.joiner.expire(end)
        start = end - self.options.window
        results = []
        for key, window in sorted(self.windows.items(), key=lambda kv: -kv[1].last_time):
            quality = window.evaluate(self.references.get(key), end, self.reference_note(key))
            labelled = self.labelled.get(key)
            while labelled and labelled[0].time <= start:
                labelled.popleft()
            if labelled:
                report = performance(list(labelled), self.training.get(key), self.performance_options, key[1])
                quality = replace(quality, performance=report)
            if quality.rows or quality.performance is not None:
                results.append(quality)
        return results
