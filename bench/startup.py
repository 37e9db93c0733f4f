"""Scenario 3 worker: launch `mlops-console` on a 10-endpoint config, time to the first overview frame.

`python -m bench.startup --runs 5` prints one JSON line. Each run starts the real entry point in a
pseudo-terminal with MLOPS_CONSOLE_FIRST_FRAME_LOG set (the app appends seconds since process start
at its first refresh), then terminates it. Measured per run:
- `process_s`: from spawn (parent clock) to the first frame, i.e. the whole process as a user sees it;
- `in_process_s`: from `main()` being called (timestamp written by a thin wrapper) to the first frame.
The registry is configured but unreachable, so it is still "loading" in the background.
Baselines in the same run: `python -c "import textual.app"` and `python -c pass`, spawn to exit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pty
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.common import PYTHON, ROOT, emit

WRAPPER = (
    "import sys, time\n"
    "t = time.time()\n"
    "open(sys.argv[1], 'w').write(repr(t))\n"
    "sys.argv = ['mlops-console', '--config', sys.argv[2]]\n"
    "from mlops_console.cli import main\n"
    "sys.exit(main())\n"
)


def write_config(root: Path, port: int) -> Path:
    lines = [
        f'[store]\npath = "{root / "console.db"}"\n',
        f'[registry]\ntracking_uri = "http://127.0.0.1:{port}"\n',
    ]
    for i in range(10):
        lines.append(
            f'[[endpoints]]\nname = "ep{i}"\nurl = "http://127.0.0.1:{port}"\nadapter = "generic"\n'
            f'path = "/e{i}"\ninterval = "1s"\n'
        )
    path = root / "console.toml"
    path.write_text("\n".join(lines))
    return path


def one_run(config: Path, root: Path, k: int) -> dict[str, float] | None:
    frame_log, main_log = root / f"frame{k}.log", root / f"main{k}.log"
    master, slave = pty.openpty()
    env = os.environ | {
        "MLOPS_CONSOLE_FIRST_FRAME_LOG": str(frame_log),
        "TERM": "xterm-256color",
        "COLUMNS": "160",
        "LINES": "48",
    }
    started = time.time()
    proc = subprocess.Popen(
        [PYTHON, "-c", WRAPPER, str(main_log), str(config)],
        cwd=ROOT,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    seen = None
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                os.read(master, 65536)  # keep the pty drained
            if frame_log.exists() and frame_log.read_text().strip():
                seen = time.time()
                break
            if proc.poll() is not None:
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        os.close(master)
    if seen is None:
        return None
    t_main = float(main_log.read_text())
    # psutil's process create time is only jiffy/boot-time precise, so both figures use the parent's
    # detection time of the log line (polled every 5 ms) as the moment of the first frame.
    return {
        "process_s": seen - started,
        "in_process_s": max(0.0, seen - t_main),
        "app_reported_s": float(frame_log.read_text().split()[0]),
    }


def baseline(code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([PYTHON, "-c", code], cwd=ROOT, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-start-"))
    config = write_config(root, 9)  # port 9 (discard): nothing listens, the registry never loads
    one_run(config, root, -1)  # warm the OS file cache once (not counted)
    runs = [r for r in (one_run(config, root, k) for k in range(args.runs)) if r]
    textual_s = baseline("import textual.app", args.runs)
    python_s = baseline("pass", args.runs)

    def med(key: str) -> float | None:
        return statistics.median(r[key] for r in runs) if runs else None

    emit(
        {
            "runs": len(runs),
            "process_s": med("process_s"),
            "process_max_s": max((r["process_s"] for r in runs), default=None),
            "in_process_s": med("in_process_s"),
            "baseline_import_textual_s": textual_s,
            "baseline_python_s": python_s,
            "ratio_to_import_textual": (med("process_s") or 0) / textual_s if textual_s else None,
        }
    )


if __name__ == "__main__":
    main()
