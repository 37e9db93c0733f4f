"""Model quality as a source: each endpoint's inference log, tailed and judged off the event loop.

Per endpoint with `[endpoints.inference_log]`, one loop wakes every second and hands a `QualityTracker`
to a worker thread: it reads what the log gained since the last read (whole lines, at most a few MB per
read, following rotation by inode), folds it into a bounded window per model version, and every
`drift.evaluate_every` scores the window of the newest version. The evaluation comes back to the loop
as a frozen `QualitySnapshot`; the engine stores it on the endpoint and evaluates the rules.

The read position is saved in the store with what was learned (references of versions' first rows, the
stuck detector) and the evaluation's aggregates, in one transaction: a restart resumes where the last
evaluation stopped, through any rotation since, and the store never holds an input value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_console.core.conditions import params_for
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.quality.drift import DriftOptions
from mlops_console.core.quality.monitor import QualityMonitor, VersionKey
from mlops_console.core.quality.offsets import LogOffset, TailError
from mlops_console.core.quality.performance import PerformanceOptions
from mlops_console.core.quality.predictions import StuckDetector
from mlops_console.core.quality.reference import ReferenceProfile
from mlops_console.core.quality.report import drift_report, open_tail
from mlops_console.core.quality.schema import Signature
from mlops_console.core.quality.seek import offset_at
from mlops_console.core.quality.snapshot import QualitySnapshot, snapshot_of
from mlops_console.core.quality.sources import ReferenceError, artifact_name, load_reference
from mlops_console.core.quality.sqlite_tail import SqliteTail
from mlops_console.core.quality.window import QualityOptions
from mlops_console.core.registry import RegistryError
from mlops_console.core.sources.base import Loop, Sink

if TYPE_CHECKING:
    from mlops_console.config import EndpointSettings, Settings
    from mlops_console.config.quality import DriftSettings
    from mlops_console.core.registry import RegistryClient
    from mlops_console.core.store import Store

log = logging.getLogger("mlops_console.quality")

POLL = 1.0
"""Seconds between reads of a log."""
READS_PER_STEP = 16
"""Reads (of at most 4 MB each) per step: a large backlog is caught up over several steps."""
RETRY_REFERENCE = 60.0
"""Seconds before a reference or signature that could not be read is tried again."""
RECENT_EVENTS = 5


def quality_options(settings: Settings, endpoint: EndpointSettings, drift: DriftSettings) -> QualityOptions:
    """The window's options: `[endpoints.drift]`, with the rules' thresholds where they shape it."""
    share = params_for(settings, "feature_drift", endpoint.name).threshold
    stuck = params_for(settings, "stuck_prediction", endpoint.name).threshold
    return QualityOptions(
        window=drift.window,
        max_rows=drift.max_rows,
        drift=DriftOptions(
            min_reference=drift.min_reference, min_current=drift.min_current, dataset_share=share
        ),
        stuck_rows=max(int(stuck), 2),
        first_rows=drift.first_rows,
    )


def performance_options(
    settings: Settings, endpoint: EndpointSettings, drift: DriftSettings
) -> PerformanceOptions:
    margin = params_for(settings, "performance_drop", endpoint.name).threshold
    return PerformanceOptions(max_delay=drift.actual_delay, min_labelled=drift.min_labelled, margin=margin)


def _key_text(key: VersionKey) -> list[str | None]:
    return [key[0], key[1]]


class VersionFacts:
    """What the registry and the configured reference say about the versions a log names; every call
    here blocks (file or registry I/O) and runs on the tracker's thread."""

    def __init__(self, settings: Settings, endpoint: EndpointSettings, drift: DriftSettings) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.spec = drift.reference
        self._client: RegistryClient | None = None
        self._failed: dict[tuple[str, VersionKey], float] = {}
        self.error: str | None = None

    @property
    def client(self) -> RegistryClient | None:
        if self._client is None and self.settings.registry.tracking_uri:
            from mlops_console.core.registry import RegistryClient

            self._client = RegistryClient(self.settings.registry)
        return self._client

    def _attempt(self, what: str, key: VersionKey, now: float, fn: Callable[[], Any]) -> tuple[bool, Any]:
        """(done, value): done is False while a failure is recent (tried again later)."""
        failed_at = self._failed.get((what, key))
        if failed_at is not None and now - failed_at < RETRY_REFERENCE:
            return False, None
        try:
            value = fn()
        except (ReferenceError, RegistryError, TailError, OSError) as exc:
            self._failed[(what, key)] = now
            self.error = f"{what}: {exc}"
            log.warning(
                "%s: %s",
                self.endpoint.name,
                self.error,
                extra={"event": "quality_error", "endpoint": self.endpoint.name},
            )
            return False, None
        self._failed.pop((what, key), None)
        self.error = None
        return True, value

    def reference(self, key: VersionKey, now: float) -> tuple[bool, ReferenceProfile | None]:
        spec = self.spec
        if spec is None:
            return True, None
        if artifact_name(spec) is None:
            return self._attempt("reference", key, now, lambda: load_reference(spec))
        model, version = key
        client = self.client
        if client is None or not model or not version:
            return True, None

        def fetch() -> ReferenceProfile:
            from mlops_console.core.run_artifacts import version_artifact_reader

            assert client is not None and model is not None and version is not None
            reader, described = version_artifact_reader(client, model, version)
            return load_reference(spec, reader, described=described)

        return self._attempt("reference", key, now, fetch)

    def signature(self, key: VersionKey, now: float) -> tuple[bool, Signature | None]:
        model, version = key
        client = self.client
        if client is None or not model or not version:
            return True, None

        def fetch() -> Signature | None:
            from mlops_console.core.run_artifacts import version_signature

            assert client is not None and model is not None and version is not None
            return version_signature(client, model, version)

        return self._attempt("signature", key, now, fetch)

    def training(self, key: VersionKey, now: float) -> tuple[bool, dict[str, float]]:
        model, version = key
        client = self.client
        if client is None or not model or not version:
            return True, {}

        def fetch() -> dict[str, float]:
            assert client is not None and model is not None and version is not None
            return dict(client.version(model, version, with_metrics=True).metrics)

        done, metrics = self._attempt("training metrics", key, now, fetch)
        return done, metrics or {}


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
        self.tail = open_tail(self.path, self.log_settings.format, self.log_settings.table)
        self.facts = VersionFacts(settings, endpoint, self.drift)
        self.monitor = QualityMonitor(
            self.options, self.performance, learn_reference=self.drift.reference is None
        )
        self.offset: LogOffset | None = None
        self.resolved: dict[VersionKey, set[str]] = {}
        self.malformed = 0
        self.events: deque[str] = deque(maxlen=RECENT_EVENTS)
        self.error: str | None = None
        self.last: QualitySnapshot | None = None
        self.evaluated_at = 0.0

    # -- start ------------------------------------------------------------------------------------------
    def _start(self, now: float) -> LogOffset:
        """Where to read from: the stored position of this log, else the start of the current window."""
        if self.store is not None:
            saved = self.store.quality_state(self.endpoint.name)
            if saved is not None and saved.log == self.path:
                try:
                    offset = LogOffset.from_dict(saved.offset)
                except ValueError:
                    log.warning(
                        "%s: stored log position unreadable; starting at the window", self.endpoint.name
                    )
                else:
                    self._restore(saved.learned)
                    return offset
        if isinstance(self.tail, SqliteTail):
            return self.tail.offset_at(now - self.options.window)
        return offset_at(self.tail, now - self.options.window)

    def _restore(self, learned: Mapping[str, Any]) -> None:
        for item in learned.get("references", ()):
            try:
                key: VersionKey = (item["model"], item["version"])
                self.monitor.set_reference(key, ReferenceProfile.from_dict(item["profile"]))
            except (KeyError, TypeError, ValueError):
                continue
        for item in learned.get("stuck", ()):
            try:
                key = (item["model"], item["version"])
                detector = StuckDetector.from_dict(item["detector"])
            except (KeyError, TypeError, ValueError):
                continue
            self.monitor.window(key).stuck = replace(detector, stuck_rows=self.options.stuck_rows)

    def _learned(self) -> dict[str, Any]:
        references = []
        if self.drift.reference is None:
            references = [
                {"model": key[0], "version": key[1], "profile": profile.to_dict()}
                for key, profile in self.monitor.references.items()
            ]
        stuck = [
            {"model": key[0], "version": key[1], "detector": window.stuck.to_dict()}
            for key, window in self.monitor.windows.items()
        ]
        return {"references": references, "stuck": stuck}

    # -- one step ---------------------------------------------------------------------------------------
    def step(self, now: float) -> QualitySnapshot | None:
        """Read what is new; every `evaluate_every`, evaluate and save. The snapshot when evaluated."""
        try:
            if self.offset is None:
                self.offset = self._start(now)
            self._read()
            self.error = None
        except TailError as exc:
            if self.error != str(exc):
                log.warning(
                    "%s: inference log: %s", self.endpoint.name, exc, extra={"event": "quality_error"}
                )
            self.error = str(exc)
        self._resolve(now)
        if now - self.evaluated_at < self.drift.evaluate_every:
            return None
        self.evaluated_at = now
        snapshot = self.evaluate(now)
        if self.store is not None and self.offset is not None:
            self._save(snapshot)
        return snapshot

    def _save(self, snapshot: QualitySnapshot) -> None:
        """Persist the position with what it was read for. A store refusing writes (locked, full) is
        not a reason to stop judging the log: the position stays in memory and the next save has it."""
        assert self.store is not None and self.offset is not None
        window = snapshot.to_dict()
        for feature in (*window["features"], *window["predictions"]):
            feature.pop("trend", None)
        try:
            self.store.save_quality(
                self.endpoint.name, self.path, self.offset.to_dict(), self._learned(), window
            )
        except sqlite3.Error as exc:  # StoreError is one too
            log.warning(
                "%s: could not save the inference log position: %s",
                self.endpoint.name,
                exc,
                extra={"event": "store_error", "endpoint": self.endpoint.name},
            )

    def _read(self) -> None:
        assert self.offset is not None
        for _ in range(READS_PER_STEP):
            batch = self.tail.read(self.offset)
            self.monitor.add(batch.records)
            self.offset = batch.offset
            self.malformed += batch.malformed
            for event in batch.events:
                if not event.startswith("rotated:"):  # following rotation is routine
                    self.events.append(event)
                    log.warning(
                        "%s: inference log %s", self.endpoint.name, event, extra={"event": "quality_log"}
                    )
            if not batch.more:
                return

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
        error = self.error or self.facts.error
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
                malformed=self.malformed,
                events=tuple(self.events),
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
                malformed=self.malformed,
                events=tuple(self.events),
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
                self.tail,
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


class QualitySource:
    """Every endpoint's inference log, read and judged on worker threads (see the module docstring)."""

    def __init__(self, settings: Settings, states: list[EndpointState], store: Store) -> None:
        self.settings = settings
        self.states = [s for s in states if s.settings.inference_log is not None]
        self.store = store
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            workers = max(1, min(2, len(self.states)))
            self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="quality")
        return self._pool

    async def open(self) -> None:
        return None

    def loops(self, sink: Sink) -> Mapping[str, Loop]:
        return {f"quality {state.name}": self._loop_for(sink, state) for state in self.states}

    def _loop_for(self, sink: Sink, state: EndpointState) -> Loop:
        async def run() -> None:
            await self._follow(sink, state)

        return run

    async def _follow(self, sink: Sink, state: EndpointState) -> None:
        loop = asyncio.get_running_loop()
        # A fresh tracker each time the loop (re)starts: it resumes from the store, like a restart.
        tracker = QualityTracker(self.settings, state.settings, self.store)
        every = tracker.drift.evaluate_every
        while True:
            snapshot = await loop.run_in_executor(self._executor(), tracker.step, time.time())
            if snapshot is not None:
                sink.quality_evaluated(state, snapshot, every, time.time())
            await asyncio.sleep(POLL)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def once(self) -> None:
        loop = asyncio.get_running_loop()
        now = time.time()
        for state in self.states:
            tracker = QualityTracker(self.settings, state.settings, None)
            snapshot = await loop.run_in_executor(self._executor(), tracker.once, now)
            state.set_quality(snapshot, tracker.drift.evaluate_every)
        await self.close()
