"""Tailing an inference log: incremental, bounded, through rotation and truncation, never twice."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_console.core.quality.offsets import LogOffset
from mlops_console.core.quality.records import ActualRecord, InferenceRecord, format_time, to_json_line
from mlops_console.core.quality.seek import last_record, offset_at
from mlops_console.core.quality.sqlite_tail import SqliteTail
from mlops_console.core.quality.tail import MAX_LINE_BYTES, LineTail
from mlops_console.serve.inference_log import InferenceLog, Scored
from tests._serve_helpers import poll_until

T0 = 1_795_000_000.0


def line(i: int, at: float | None = None) -> str:
    record = InferenceRecord(
        T0 + i if at is None else at, {"x": float(i), "c": "a"}, i % 3, "m", "1", id=f"r{i}"
    )
    return to_json_line(record) + "\n"


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(text)


def drain(tail: LineTail | SqliteTail, offset: LogOffset | None) -> tuple[list[str], LogOffset, list[str]]:
    """Read until nothing more is waiting: (ids, offset, events). The offset goes through JSON each
    time, as a caller persisting it would do."""
    ids: list[str] = []
    events: list[str] = []
    while True:
        batch = tail.read(offset)
        ids += [r.id for r in batch.records if isinstance(r, InferenceRecord) and r.id]
        events += batch.events
        offset = LogOffset.from_dict(json.loads(json.dumps(batch.offset.to_dict())))
        if not batch.more:
            return ids, offset, events


def rotate(path: Path, backups: int = 5) -> None:
    """What `serve --log-inferences` and logrotate do: PATH.k -> PATH.k+1, PATH -> PATH.1."""
    for number in range(backups - 1, 0, -1):
        source = path.with_name(f"{path.name}.{number}")
        if source.exists():
            source.rename(path.with_name(f"{path.name}.{number + 1}"))
    path.rename(path.with_name(f"{path.name}.1"))


def test_reads_new_lines_only_and_waits_for_a_half_written_one(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    append(log, line(0) + line(1))
    tail = LineTail(log)
    ids, offset, _ = drain(tail, None)
    assert ids == ["r0", "r1"]
    partial = line(2)
    append(log, partial[:20])
    ids, offset, _ = drain(tail, offset)
    assert ids == []
    append(log, partial[20:] + line(3))
    ids, offset, _ = drain(tail, offset)
    assert ids == ["r2", "r3"]
    assert drain(tail, offset)[0] == []


def test_rotation_is_followed_without_loss_or_double_counting(tmp_path: Path) -> None:
    """The reader stops mid-file, the log rotates twice before it comes back: it finishes the file it
    was reading under its new name, then the next one, then the new log."""
    log = tmp_path / "inferences.jsonl"
    tail = LineTail(log)
    append(log, "".join(line(i) for i in range(10)))
    first = tail.read(None)
    assert len(first.records) == 10
    append(log, "".join(line(i) for i in range(10, 20)))
    rotate(log)
    append(log, "".join(line(i) for i in range(20, 30)))
    rotate(log)
    append(log, "".join(line(i) for i in range(30, 35)))
    ids, offset, events = drain(tail, first.offset)
    assert ids == [f"r{i}" for i in range(10, 35)]
    assert sum("rotated" in e for e in events) == 2 and not any("lost" in e for e in events)
    append(log, line(35))
    assert drain(tail, offset)[0] == ["r35"]


def test_a_rotated_file_gone_before_it_was_finished_is_reported_lost(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    tail = LineTail(log)
    append(log, line(0))
    offset = tail.read(None).offset
    append(log, line(1))
    rotate(log)
    append(log, line(2))
    (tmp_path / "inferences.jsonl.1").unlink()  # after the new file exists, so its inode is not reused
    ids, _, events = drain(tail, offset)
    assert ids == ["r2"]
    assert any(e.startswith("lost:") for e in events)


def test_truncation_and_a_replaced_file_restart_from_the_beginning(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    tail = LineTail(log)
    append(log, line(0) + line(1) + line(2))
    offset = tail.read(None).offset
    log.write_text(line(3))  # truncated in place (same inode), shorter than the offset
    ids, offset, events = drain(tail, offset)
    assert ids == ["r3"] and any(e.startswith("truncated:") for e in events)
    # Same inode, longer than the offset, but other first bytes: a rewritten file, not a grown one.
    log.write_text(line(7) + line(8) + line(9) + line(10))
    ids, _, events = drain(tail, offset)
    assert ids == ["r7", "r8", "r9", "r10"] and any(e.startswith("truncated:") for e in events)


def test_malformed_and_overlong_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    append(log, line(0) + "not json\n" + '{"time": "yesterday", "inputs": {}}\n')
    append(log, '{"inputs": {"x": ' + "1" * (MAX_LINE_BYTES + 10) + "}}\n" + line(1))
    tail = LineTail(log)
    malformed, ids, offset = 0, [], None
    while True:
        batch = tail.read(offset)
        malformed += batch.malformed
        ids += [r.id for r in batch.records if isinstance(r, InferenceRecord)]
        offset = batch.offset
        if not batch.more:
            break
    assert ids == ["r0", "r1"] and malformed == 3


def test_each_read_is_bounded_and_says_more_is_waiting(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    append(log, "".join(line(i) for i in range(30_000)))  # about 3.6 MB
    tail = LineTail(log, read_bytes=MAX_LINE_BYTES)
    batch = tail.read(None)
    assert batch.more and batch.bytes_read <= MAX_LINE_BYTES and 0 < len(batch.records) < 30_000
    ids, _, _ = drain(tail, batch.offset)
    assert len(batch.records) + len(ids) == 30_000 and ids[-1] == "r29999"


def test_actual_outcomes_and_csv_rows_with_rotation(tmp_path: Path) -> None:
    log = tmp_path / "inferences.csv"
    header = "time,model,version,id,inputs.x,inputs.c,prediction,actual\n"
    append(log, header + f"{format_time(T0)},m,1,r0,1.5,a,2,\n" + f"{format_time(T0 + 1)},,,r0,,,,2\n")
    tail = LineTail(log, "csv")
    batch = tail.read(None)
    scored, actual = batch.records
    assert (
        isinstance(scored, InferenceRecord)
        and scored.inputs == {"x": 1.5, "c": "a"}
        and scored.prediction == 2
    )
    assert isinstance(actual, ActualRecord) and (actual.id, actual.actual) == ("r0", 2)
    append(log, f"{format_time(T0 + 2)},m,1,r1,2.5,b,1,\n")
    rotate(log)
    append(log, "time,model,version,id,inputs.x,prediction\n" + f"{format_time(T0 + 3)},m,1,r2,3.5,0\n")
    records = tail.read(batch.offset).records
    assert [r.id for r in records] == ["r1", "r2"]
    assert records[1].inputs == {"x": 3.5}


def test_sqlite_table_by_rowid_and_a_recreated_table(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE inferences (time TEXT, model TEXT, version TEXT, id TEXT, inputs TEXT, prediction)"
        )
        for i in range(5):
            conn.execute(
                "INSERT INTO inferences VALUES (?, 'm', '1', ?, ?, ?)",
                (format_time(T0 + i), f"r{i}", json.dumps({"x": i, "c": "a"}), i % 2),
            )
    tail = SqliteTail(db, "inferences", read_rows=3)
    ids, offset, _ = drain(tail, None)
    assert ids == [f"r{i}" for i in range(5)]
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE inferences")
        conn.execute('CREATE TABLE inferences (time TEXT, id TEXT, "inputs.x" REAL, prediction)')
        conn.execute("INSERT INTO inferences VALUES (?, 'r9', 9.0, 1)", (format_time(T0 + 9),))
    ids, _, events = drain(tail, offset)
    assert ids == ["r9"] and any(e.startswith("truncated:") for e in events)
    assert last_record_time(tail) == pytest.approx(T0 + 9)


def last_record_time(tail: SqliteTail) -> float | None:
    record = tail.last_record()
    return record.time if record else None


def test_offset_at_finds_a_time_across_rotated_files(tmp_path: Path) -> None:
    log = tmp_path / "inferences.jsonl"
    append(log, "".join(line(i) for i in range(0, 2000)))
    rotate(log)
    append(log, "".join(line(i) for i in range(2000, 6000)))
    tail = LineTail(log)
    for wanted in (0, 1500, 1999, 2000, 4321, 5999):
        offset = offset_at(tail, T0 + wanted - 0.5)
        assert tail.read(offset).records[0].id == f"r{wanted}", wanted
    record = last_record(tail)
    assert record is not None and record.id == "r5999"


def test_following_the_real_writer_while_it_rotates(tmp_path: Path) -> None:
    """`serve --log-inferences`' writer rotating every few kB while a reader follows it: every row
    exactly once, in order."""
    log = tmp_path / "inferences.jsonl"
    written = {"rows": 0}

    def count(kind: str, n: int) -> None:
        if kind == "written":
            written["rows"] += n

    writer = InferenceLog(log, max_bytes=8 * 1024, backups=3, on_rows=count)
    tail = LineTail(log)
    seen: list[str] = []
    offset = None
    for n in range(60):
        frame = pd.DataFrame({"x": np.arange(5, dtype=float) + n, "c": ["a"] * 5})
        writer.submit(Scored(time.time(), "m", "1", frame, np.arange(5) % 3, f"q{n}", 5))
        if n % 7 == 0:  # the reader comes back now and then, not after every write
            # Once the writer thread caught up: a reader away for more than `backups` rotations
            # would rightly miss a deleted file, and a loaded machine must not make it so.
            poll_until(lambda n=n: written["rows"] == 5 * (n + 1), 30, "the writer to catch up")
            ids, offset, _ = drain(tail, offset)
            seen += ids
    writer.close()
    ids, offset, _ = drain(tail, offset)
    seen += ids
    assert seen == [f"q{n}:{i}" for n in range(60) for i in range(5)]
    assert len(list(tmp_path.glob("inferences.jsonl.*"))) == 3
    assert os.path.getsize(log) <= 8 * 1024


def test_the_writer_samples_and_counts_what_it_left_out(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    log = tmp_path / "inferences.jsonl"
    writer = InferenceLog(log, sample=0.25, on_rows=lambda k, n: counts.__setitem__(k, counts.get(k, 0) + n))
    frame = pd.DataFrame({"x": np.arange(4000, dtype=float)})
    writer.submit(Scored(time.time(), "m", "1", frame, np.zeros(4000), None, 4000))
    writer.close()
    written = len(log.read_text().splitlines())
    assert counts == {"written": written, "sampled_out": 4000 - written}
    assert 800 < written < 1200


def test_the_writer_drops_rather_than_queue_without_bound(tmp_path: Path) -> None:
    counts: dict[str, int] = {}
    log = tmp_path / "inferences.jsonl"
    writer = InferenceLog(
        log, max_pending_rows=10, on_rows=lambda k, n: counts.__setitem__(k, counts.get(k, 0) + n)
    )
    big = pd.DataFrame({"x": np.arange(11, dtype=float)})
    writer.submit(Scored(time.time(), "m", "1", big, np.zeros(11), None, 11))
    small = pd.DataFrame({"x": [1.0, float("nan")]})
    writer.submit(Scored(time.time(), "m", "1", small, np.array([float("inf"), 1.0]), None, 2))
    writer.close()
    poll_until(lambda: counts.get("written") == 2, 5, "the small batch written")
    assert counts["dropped"] == 11
    first = json.loads(log.read_text().splitlines()[0])
    assert first["inputs"] == {"x": 1.0} and first["prediction"] == "Infinity"
    assert json.loads(log.read_text().splitlines()[1])["inputs"] == {"x": None}
