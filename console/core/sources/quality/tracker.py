"""One endpoint's inference log, window and evaluations: a step reads what the log gained, resolves
what the registry says about the versions seen, and every `evaluate_every` evaluates and saves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_console.core.quality.monitor import QualityMonitor, VersionKey
from mlops_console.core.quality.offsets import LogOffset, TailError
from mlops_console.core.quality.records import ActualRecord, Record
from mlops_console.core.quality.reference import ReferenceProfile
from mlops_console.core.quality.report import drift_report
from mlops_console.core.quality.schema import Signature
from mlops_console.core.quality.snapshot import QualitySnapshot, snapshot_of
from mlops_console.core.quality.sources import ReferenceError
from mlops_console.core.registry import RegistryError
from mlops_console.core.sources.quality import saved
from mlops_console.core.sources.quality.facts import VersionFacts
from mlops_console.core.sources.quality.options import performance_options, quality_options
from mlops_console.core.sources.quality.reading import LogReader

if TYPE_CHECKING:
    from mlops_console.config import EndpointSettings, Settings
    from mlops_console.core.store import Store


class QualityTracker:
    """One endpoint's log, window and evaluations. Used by one thread at a time (its loop awaits each
    step before the next), and hands out only frozen snapshots."""

    def __init__(self, settings: Settings, endpoint: EndpointSettings, store: Store | None) -> None:
        assert endpoint.inference_log is not None
        self.endpoint = endpoint
        drift = endpoint.quality
        assert drift is not None
        self.drift = drift
        self.log_settings = endpoint.inference_log
        self.path = str(Path(endpoint.inference_log.path).expanduser())
        self.store = store
        self.options = quality_options(settings, endpoint, self.drift)
        self.performance = performance_options(settings, endpoint, self.drift)
        self.reader = LogReader(endpoint.name, self.path, self.log_settings.format, self.log_settings.table)
        actuals = self.log_settings.actuals
        self.actuals: LogReader | None = None
        if actuals is not None:
            path = str(Path(actuals.path).expanduser())
            self.actuals = LogReader(endpoint.name, path, actuals.format, actuals.table)
        self._resumed_actuals: LogOffset | None = None
        self.facts = VersionFacts(settings, endpoint, self.drift)
        self.monitor = QualityMonitor(
            self.options, self.performance, learn_reference=self.drift.reference is None
        )
        self.resolved: dict[VersionKey, set[str]] = {}
        self.last: QualitySnapshot | None = None
        self.evaluated_at = 0.0

    def _start(self, now: float) -> LogOffset:
        """Where to read from: the stored position of this log, else the start of the current window."""
        if self.store is not None:
            resumed = saved.resume(
                self.store, self.endpoint.name, self.path, self.monitor, self.options.stuck_rows
            )
            if resumed is not None:
                offset, learned = resumed
                if self.actuals is not None:
                    self._resumed_actuals = saved.actuals_position(learned, self.actuals.path)
                return offset
        return self.reader.offset_at(now - self.options.window)

    def _start_actuals(self, now: float) -> LogOffset:
        """The actuals log's stored position (saved with the inference log's), else the window's start:
        an actual older than the window's rows has nothing left to join."""
        assert self.actuals is not None
        if self._resumed_actuals is not None:
            return self._resumed_actuals
        return self.actuals.offset_at(now - self.options.window)

    def _add_actuals(self, records: Iterable[Record]) -> None:
        # Only outcomes count from this log: a scored row here would be counted twice.
        self.monitor.add([r for r in records if isinstance(r, ActualRecord)])

    def step(self, now: float) -> QualitySnapshot | None:
        """Read what is new; every `evaluate_every`, evaluate and save. The snapshot when evaluated."""
        self.reader.follow(lambda: self._start(now), self.monitor.add)
        if self.actuals is not None and self.reader.offset is not None:
            self.actuals.follow(lambda: self._start_actuals(now), self._add_actuals)
        self._resolve(now)
        if now - self.evaluated_at < self.drift.evaluate_every:
            return None
        self.evaluated_at = now
        snapshot = self.evaluate(now)
        if self.store is not None and self.reader.offset is not None:
            learned = saved.learned(self.monitor, learn_reference=self.drift.reference is None)
            if self.actuals is not None and self.actuals.offset is not None:
                learned["actuals"] = {"log": self.actuals.path, "offset": self.actuals.offset.to_dict()}
            saved.save(self.store, self.endpoint.name, self.path, self.reader.offset, learned, snapshot)
        return snapshot

    def _resolve(self, now: float) -> None:
        """Reference, signature and training metrics of each version seen (once each, retried on failure)."""
        for key in list(self.monitor.windows):
            done = self.resolved.setdefault(key, set())
            if "reference" not in done:
                ok, reference = self.facts.reference(key, now)
                if ok:
                    done.add("reference")
                    if reference is not None:
                        self.monitor.set_reference(key, reference)
            if "signature" not in done:
                ok, signature = self.facts.signature(key, now)
                if ok:
                    done.add("signature")
                    if signature is None:
                        signature = self._signature_from_reference(key)
                    if signature is not None:
                        self.monitor.set_signature(key, signature)
                    else:
                        done.discard("signature")  # a learned reference may come later
            if "training" not in done:
                ok, metrics = self.facts.training(key, now)
                if ok:
                    done.add("training")
                    self.monitor.set_training_metrics(key, metrics)

    def _signature_from_reference(self, key: VersionKey) -> Signature | None:
        reference = self.monitor.references.get(key)
        if reference is None:
            return None
        kinds = {name: profile.kind for name, profile in reference.features if name in reference.input_names}
        return Signature.from_columns(kinds, source="the reference's columns")

    def evaluate(self, now: float) -> QualitySnapshot:
        results = self.monitor.evaluate(now)
        # A version without rows in the window (replaced by a promote) is forgotten: memory stays
        # bounded however many versions the log has seen.
        horizon = now - self.options.window
        for idle in [k for k, w in self.monitor.windows.items() if w.last_time <= horizon]:
            del self.monitor.windows[idle]
        error = self.reader.error or self.facts.error
        malformed, events = self.reader.malformed, tuple(self.reader.events)
        if self.actuals is not None:
            if self.actuals.error and not error:
                error = f"actuals log: {self.actuals.error}"
            malformed += self.actuals.malformed
            events += tuple(f"actuals log {e}" for e in self.actuals.events)
        if not results:
            previous = self.last
            snapshot = QualitySnapshot(
                log=self.path,
                evaluated_at=now,
                model=previous.model if previous else self.endpoint.model,
                version=previous.version if previous else None,
                window=self.options.window,
                reference=previous.reference if previous else "no rows logged yet",
                dataset_share=self.options.drift.dataset_share,
                malformed=malformed,
                events=events,
                error=error,
            )
        else:
            newest = results[0]
            key: VersionKey = (newest.model, newest.version)
            signature = self.monitor.signatures.get(key)
            others = tuple(f"v{r.version}: {r.rows} rows" for r in results[1:] if r.rows)
            snapshot = snapshot_of(
                newest,
                log=self.path,
                evaluated_at=now,
                window=self.options.window,
                dataset_share=self.options.drift.dataset_share,
                signature=signature.source if signature is not None else "",
                malformed=malformed,
                events=events,
                other_versions=others,
            )
            snapshot = replace(snapshot, error=error).with_trends(self.last)
        self.last = snapshot
        return snapshot

    def once(self, now: float) -> QualitySnapshot:
        """One evaluation of the log's latest window, read from the log alone (for `status`)."""
        facts = self.facts

        def reference_for(model: str | None, version: str | None) -> ReferenceProfile:
            ok, reference = facts.reference((model, version), now)
            if not ok or reference is None:
                raise ReferenceError(facts.error or f"reference {self.drift.reference}: not available")
            return reference

        def signature_for(model: str | None, version: str | None) -> Signature | None:
            return facts.signature((model, version), now)[1]

        try:
            report = drift_report(
                self.reader.tail,
                window=self.options.window,
                reference_for=reference_for if self.drift.reference else None,
                signature_for=signature_for,
                options=self.options,
                end=now,
            )
        except (TailError, ReferenceError, RegistryError) as exc:
            return QualitySnapshot(
                log=self.path, evaluated_at=now, window=self.options.window, error=str(exc)
            )
        if report.quality is None:
            return QualitySnapshot(
                log=self.path, evaluated_at=now, window=self.options.window, reference="no rows logged yet"
            )
        return snapshot_of(
            report.quality,
            log=self.path,
            evaluated_at=now,
            window=self.options.window,
            dataset_share=self.options.drift.dataset_share,
            signature=report.signature,
            malformed=report.malformed,
            events=report.events,
            other_versions=tuple(f"{k}: {n} rows" for k, n in report.other_versions.items()),
        )
