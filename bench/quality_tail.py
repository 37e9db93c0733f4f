"""Scenario 8 worker: tailing an inference log written at 1,000 rows/s, and memory as the log grows.

`python -m bench.quality_tail --rate 1000 --seconds 60` prints one JSON line. It runs three
processes side by side for the same stretch of wall time, so they see the same machine:
- the writer: `serve --log-inferences`' own writer (`InferenceLog`), fed 100-row frames of 20
  features ten times a second, rotating at 64 MB;
- the tailer: what the engine will run, once a second: `LineTail.read` to the end, then
  `QualityMonitor.add`; and a full `evaluate` (drift of 20 features against a reference, input and
  prediction checks, over the window's rows) every 10 s, whose CPU is also reported on its own;
- two baselines: a bare loop that reads the new bytes and splits lines, and one that also `json.loads`
  every line (the least any reader of this log must do).
CPU share is process CPU time over wall time, measured from the first read.

`--memory-rows N` instead writes N rows as fast as possible while one tailer reads them without
pausing, and samples its RSS every tenth of the way: memory must level off however large the log.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, emit

FEATURES = 20
ROTATE_BYTES = 64 * 1024 * 1024
EVALUATE_EVERY = 10.0


def _frame(rng: Any, rows: int) -> Any:
    import pandas as pd

    return pd.DataFrame({f"f{i:02d}": rng.normal(0.0, 1.0 + i, rows) for i in range(FEATURES)})


def writer(path: Path, rate: float, seconds: float, total_rows: int | None) -> dict[str, Any]:
    import numpy as np

    from mlops_console.serve.inference_log import InferenceLog, Scored

    rng = np.random.default_rng(3)
    log = InferenceLog(path, max_bytes=ROTATE_BYTES, backups=3, max_pending_rows=10**7)
    chunk = 100
    started = time.monotonic()
    sent = 0
    while True:
        if total_rows is not None:
            if sent >= total_rows:
                break
        elif time.monotonic() - started >= seconds:
            break
        frame = _frame(rng, chunk)
        log.submit(Scored(time.time(), "bench", "1", frame, rng.integers(0, 3, chunk), None, chunk))
        sent += chunk
        if total_rows is None:
            time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    log.close(timeout=600)
    return {"rows": sent, "seconds": time.monotonic() - started}


def tailer(path: Path, seconds: float, poll: float, expect_rows: int | None) -> dict[str, Any]:
    import numpy as np
    import psutil

    from mlops_console.core.quality.monitor import QualityMonitor
    from mlops_console.core.quality.reference import profile_columns
    from mlops_console.core.quality.schema import Signature
    from mlops_console.core.quality.tail import LineTail
    from mlops_console.core.quality.window import QualityOptions

    rng = np.random.default_rng(4)
    reference = profile_columns({k: v.to_numpy() for k, v in _frame(rng, 5000).items()}, source="bench")
    monitor = QualityMonitor(QualityOptions(window=900.0), learn_reference=False)
    key = ("bench", "1")
    monitor.set_reference(key, reference)
    monitor.set_signature(
        key, Signature.from_columns(dict.fromkeys(reference.input_names, "numeric"), "bench")
    )
    tail = LineTail(path)
    proc = psutil.Process()
    while not path.exists():
        time.sleep(0.05)
    rss_start = proc.memory_info().rss
    offset = None
    rows = evaluations = 0
    samples: list[tuple[int, float]] = []
    evaluate_cpu: list[float] = []
    next_sample = (expect_rows or 0) / 10
    wall, cpu = time.monotonic(), time.process_time()
    next_evaluate = wall + EVALUATE_EVERY
    while True:
        while True:
            batch = tail.read(offset)
            offset = batch.offset
            monitor.add(batch.records)
            rows += len(batch.records)
            if expect_rows and rows >= next_sample:
                samples.append((rows, proc.memory_info().rss / 2**20))
                next_sample += expect_rows / 10
            if not batch.more:
                break
        now = time.monotonic()
        if now >= next_evaluate or (expect_rows and rows >= expect_rows):
            before = time.process_time()
            monitor.evaluate(time.time())
            evaluate_cpu.append(time.process_time() - before)
            evaluations += 1
            next_evaluate = now + EVALUATE_EVERY
        if expect_rows is not None:
            if rows >= expect_rows:
                break
        elif now - wall >= seconds:
            break
        if poll:
            time.sleep(poll)
    wall_s, cpu_s = time.monotonic() - wall, time.process_time() - cpu
    return {
        "rows": rows,
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "cpu_share": cpu_s / wall_s,
        # Reading and folding rows in, without the periodic evaluation (reported on its own).
        "tail_cpu_share": (cpu_s - sum(evaluate_cpu)) / wall_s,
        "evaluate_cpu_ms_max": max(evaluate_cpu, default=0.0) * 1000,
        "evaluations": evaluations,
        "rss_start_mb": rss_start / 2**20,
        "rss_end_mb": proc.memory_info().rss / 2**20,
        "rss_samples": samples,
    }


def bare(path: Path, seconds: float, poll: float, parse: bool) -> dict[str, Any]:
    """The floor: read what was appended (following the name, rotation naively), split lines."""
    while not path.exists():
        time.sleep(0.05)
    handle = path.open("rb")
    inode = os.fstat(handle.fileno()).st_ino
    rows = 0
    pending = b""
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < seconds:
        data = handle.read()
        if not data:
            try:
                if os.stat(path).st_ino != inode:
                    handle.close()
                    handle = path.open("rb")
                    inode = os.fstat(handle.fileno()).st_ino
                    continue
            except FileNotFoundError:
                pass
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        if parse:
            for line in lines:
                json.loads(line)
        rows += len(lines)
        time.sleep(poll)
    wall_s, cpu_s = time.monotonic() - wall, time.process_time() - cpu
    return {"rows": rows, "wall_s": wall_s, "cpu_s": cpu_s, "cpu_share": cpu_s / wall_s}


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "bench.quality_tail", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONHASHSEED": "0"},
    )  # fmt: skip


def _result(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench.quality_tail role failed ({proc.returncode})")
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["main", "writer", "tailer", "bare", "bare-parse"], default="main")
    parser.add_argument("--path", type=Path)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--memory-rows", type=int, default=0)
    args = parser.parse_args()
    if args.role == "writer":
        emit(writer(args.path, args.rate, args.seconds, args.memory_rows or None))
        return
    if args.role == "tailer":
        emit(tailer(args.path, args.seconds, args.poll, args.memory_rows or None))
        return
    if args.role in ("bare", "bare-parse"):
        emit(bare(args.path, args.seconds, args.poll, parse=args.role == "bare-parse"))
        return
    with tempfile.TemporaryDirectory(prefix="bench-tail-") as tmp:
        path = Path(tmp) / "inferences.jsonl"
        common = ["--path", str(path), "--seconds", str(args.seconds)]
        if args.memory_rows:
            rows = ["--memory-rows", str(args.memory_rows)]
            readers = {"tailer": _spawn("--role", "tailer", "--poll", "0", *common, *rows)}
            write = _spawn("--role", "writer", *common, *rows)
        else:
            readers = {
                role: _spawn("--role", role, "--poll", str(args.poll), *common)
                for role in ("tailer", "bare", "bare-parse")
            }
            write = _spawn("--role", "writer", "--rate", str(args.rate), *common)
        written = _result(write, timeout=args.seconds * 3 + 600)
        results = {role: _result(proc, timeout=args.seconds + 600) for role, proc in readers.items()}
        disk = sum(p.stat().st_size for p in Path(tmp).iterdir())
    emit(
        {"rate": args.rate, "seconds": args.seconds, "writer": written, **results, "log_bytes_on_disk": disk}
    )


if __name__ == "__main__":
    main()
