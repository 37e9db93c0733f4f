"""The engine's log reader across restarts: the read position and the learned reference live in the
store, so a new tracker (a restarted watcher) resumes where the last evaluation stopped, through a
rotation that happened meanwhile, without reading a row twice or learning the reference again."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

from mlops_console.config import Settings, parse_settings
from mlops_console.core.quality.records import ActualRecord, InferenceRecord, to_json_line
from mlops_console.core.sources.quality.tracker import QualityTracker
from mlops_console.core.store import Store


def settings(tmp_path: Path, log: Path, actuals: Path | None = None) -> Settings:
    inference_log: dict[str, object] = {"path": str(log)}
    if actuals is not None:
        inference_log["actuals"] = {"path": str(actuals)}
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": [
                {
                    "name": "ep",
                    "url": "http://127.0.0.1:1",
                    "inference_log": inference_log,
                    "drift": {
                        "window": "1h",
                        "evaluate_every": "1s",
                        "first_rows": 100,
                        "min_reference": 100,
                        "min_labelled": 100,
                    },
                }
            ],
        }
    )


def append(log: Path, rows: int, at: float) -> None:
    rng = random.Random(rows)
    with log.open("a") as out:
        for i in range(rows):
            record = InferenceRecord(at + i * 0.001, {"x": rng.gauss(0, 1)}, rng.randint(0, 2), "m", "1")
            out.write(to_json_line(record) + "\n")


def test_a_restarted_tracker_resumes_after_rotation_without_double_counting(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    now = time.time()
    append(log, 300, now - 60)
    s = settings(tmp_path, log)
    store = Store(s.store.path)
    first = QualityTracker(s, s.endpoints[0], store).step(now)
    assert first is not None
    assert first.reference.startswith("first 100 rows of version 1") and first.rows == 200
    saved = store.quality_state("ep")
    assert saved is not None and saved.offset["position"] == log.stat().st_size
    assert saved.learned["references"][0]["version"] == "1"

    # While the watcher is down the writer rotates (PATH -> PATH.1) after 20 more rows, then writes 50.
    append(log, 20, now - 30)
    log.rename(tmp_path / "inferences.jsonl.1")
    append(log, 50, now - 20)

    second = QualityTracker(s, s.endpoints[0], store).step(now + 1)
    assert second is not None
    # Only the 70 rows written since: none of the 300 again, and the reference came from the store.
    assert second.rows == 70
    assert second.reference == first.reference
    assert store.quality_state("ep").offset["position"] == log.stat().st_size  # type: ignore[union-attr]


def test_another_log_path_starts_afresh_at_the_window(tmp_path: Path) -> None:
    old, new = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    now = time.time()
    append(old, 300, now - 60)
    store = Store(tmp_path / "console.db")
    s = settings(tmp_path, old)
    QualityTracker(s, s.endpoints[0], store).step(now)
    append(new, 400, now - 30)
    moved = settings(tmp_path, new)
    snapshot = QualityTracker(moved, moved.endpoints[0], store).step(now)
    assert snapshot is not None and snapshot.rows == 300  # 400 new rows, the first 100 learned as reference


def test_a_replaced_version_is_forgotten_once_its_rows_leave_the_window(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    now = time.time()
    append(log, 300, now - 60)
    s = settings(tmp_path, log)
    tracker = QualityTracker(s, s.endpoints[0], Store(s.store.path))
    tracker.step(now)
    with log.open("a") as out:  # a promote: version 2 an hour and a half later
        for i in range(300):
            out.write(
                to_json_line(InferenceRecord(now + 5400 + i * 0.001, {"x": float(i % 7)}, 1, "m", "2")) + "\n"
            )
    snapshot = tracker.step(now + 5401)
    assert snapshot is not None and snapshot.version == "2"
    assert list(tracker.monitor.windows) == [("m", "2")]


def test_a_locked_store_does_not_stop_the_evaluation_and_the_next_save_catches_up(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    now = time.time()
    append(log, 300, now - 60)
    s = settings(tmp_path, log)
    store = Store(s.store.path, lock_timeout=0.2)
    tracker = QualityTracker(s, s.endpoints[0], store)
    holder = sqlite3.connect(s.store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        snapshot = tracker.step(now)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert snapshot is not None and snapshot.rows == 200
    assert store.quality_state("ep") is None
    append(log, 10, now - 1)
    tracker.step(now + 2)
    saved = store.quality_state("ep")
    assert saved is not None and saved.offset["position"] == log.stat().st_size


def test_outcomes_from_a_second_log_are_joined_and_its_position_is_kept(tmp_path: Path) -> None:
    """`[endpoints.inference_log.actuals]`: outcomes in their own file join the scored rows by id; a
    scored row in that file is not counted again; its read position is saved beside the log's."""
    log, actuals = tmp_path / "inferences.jsonl", tmp_path / "actuals.jsonl"
    now = time.time()
    with log.open("w") as out:
        for i in range(300):
            record = InferenceRecord(now - 60 + i * 0.01, {"x": float(i % 7)}, i % 3, "m", "1", id=f"r{i}")
            out.write(to_json_line(record) + "\n")
    with actuals.open("w") as out:
        for i in range(250):  # right on every row but those divisible by 5
            out.write(to_json_line(ActualRecord(now - 30, f"r{i}", i % 3 if i % 5 else 9)) + "\n")
        stray = InferenceRecord(now - 30, {"x": 1.0}, 0, "m", "1")
        out.write(to_json_line(stray) + "\n")
    s = settings(tmp_path, log, actuals)
    store = Store(s.store.path)
    snapshot = QualityTracker(s, s.endpoints[0], store).step(now)
    assert snapshot is not None and snapshot.rows == 200  # 300 minus the first 100 learned as reference
    assert snapshot.labelled == 250
    assert dict((name, live) for name, live, _ in snapshot.performance)["accuracy"] == 0.8
    saved = store.quality_state("ep")
    assert saved is not None and saved.learned["actuals"]["log"] == str(actuals)
    assert saved.learned["actuals"]["offset"]["position"] == actuals.stat().st_size

    # After a restart, only what the outcomes' file gained since is read.
    with actuals.open("a") as out:
        out.write(to_json_line(ActualRecord(now - 20, "r299", 2)) + "\n")
    restarted = QualityTracker(s, s.endpoints[0], store)
    restarted.step(now + 1)
    assert restarted.actuals is not None and restarted.actuals.offset is not None
    assert restarted.actuals.offset.position == actuals.stat().st_size
    assert restarted.actuals.malformed == 0 and restarted.monitor.joiner.actuals.keys() == {"r299"}
