"""A tracker's position and what it learned, to and from the store: references learned from versions'
first rows and the stuck detectors' state beside the read position, and each evaluation's aggregates,
written in one transaction so the position never runs ahead of what it was read for."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlops_console.core.quality.monitor import QualityMonitor, VersionKey
from mlops_console.core.quality.offsets import LogOffset
from mlops_console.core.quality.predictions import StuckDetector
from mlops_console.core.quality.reference import ReferenceProfile
from mlops_console.core.quality.snapshot import QualitySnapshot

if TYPE_CHECKING:
    from mlops_console.core.store import Store

log = logging.getLogger("mlops_console.quality")


def resume(
    store: Store, endpoint: str, path: str, monitor: QualityMonitor, stuck_rows: int
) -> tuple[LogOffset, Mapping[str, Any]] | None:
    """The stored position in this log and what was learned there (also put back into `monitor`);
    None when the store has none for this log (or cannot read it)."""
    saved = store.quality_state(endpoint)
    if saved is None or saved.log != path:
        return None
    try:
        offset = LogOffset.from_dict(saved.offset)
    except ValueError:
        log.warning("%s: stored log position unreadable; starting at the window", endpoint)
        return None
    restore(monitor, saved.learned, stuck_rows)
    return offset, saved.learned


def actuals_position(learned: Mapping[str, Any], path: str) -> LogOffset | None:
    """The stored position in the actuals log at `path`, saved beside the inference log's."""
    item = learned.get("actuals")
    if not isinstance(item, Mapping) or item.get("log") != path:
        return None
    try:
        return LogOffset.from_dict(item["offset"])
    except (KeyError, TypeError, ValueError):
        return None


def restore(monitor: QualityMonitor, learned: Mapping[str, Any], stuck_rows: int) -> None:
    for item in learned.get("references", ()):
        try:
            key: VersionKey = (item["model"], item["version"])
            monitor.set_reference(key, ReferenceProfile.from_dict(item["profile"]))
        except (KeyError, TypeError, ValueError):
            continue
    for item in learned.get("stuck", ()):
        try:
            key = (item["model"], item["version"])
            detector = StuckDetector.from_dict(item["detector"])
        except (KeyError, TypeError, ValueError):
            continue
        monitor.window(key).stuck = replace(detector, stuck_rows=stuck_rows)


def learned(monitor: QualityMonitor, learn_reference: bool) -> dict[str, Any]:
    references = []
    if learn_reference:
        references = [
            {"model": key[0], "version": key[1], "profile": profile.to_dict()}
            for key, profile in monitor.references.items()
        ]
    stuck = [
        {"model": key[0], "version": key[1], "detector": window.stuck.to_dict()}
        for key, window in monitor.windows.items()
    ]
    return {"references": references, "stuck": stuck}


def save(
    store: Store,
    endpoint: str,
    path: str,
    offset: LogOffset,
    learned: dict[str, Any],
    snapshot: QualitySnapshot,
) -> None:
    """Persist the position with what it was read for. A store refusing writes (locked, full) is not a
    reason to stop judging the log: the position stays in memory and the next save has it."""
    window = snapshot.to_dict()
    for feature in (*window["features"], *window["predictions"]):
        feature.pop("trend", None)
    try:
        store.save_quality(endpoint, path, offset.to_dict(), learned, window)
    except sqlite3.Error as exc:  # StoreError is one too
        log.warning(
            "%s: could not save the inference log position: %s",
            endpoint,
            exc,
            extra={"event": "store_error", "endpoint": endpoint},
        )
