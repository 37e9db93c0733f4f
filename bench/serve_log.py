"""Scenario 9 worker: what `serve --log-inferences` costs the scoring path.

`python -m bench.serve_log --requests 2000` prints one JSON line. A logistic regression on iris is
saved as an MLflow model and served twice, by `mlops-console serve` with and without
`--log-inferences`, both running at once. Each is driven in turn, in alternating blocks (so a change
of load on the shared machine hits both), by one client sending 5-row requests back to back
(latency p50/p99) and then by 8 concurrent clients (throughput). The server without the log is the
baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, ROOT, emit, pct

BLOCK = 100
CONCURRENCY = 8


def save_model(root: Path) -> tuple[Path, list[list[float]], list[str]]:
    import mlflow.sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    bunch = load_iris(as_frame=True)
    features = bunch.data
    model = LogisticRegression(max_iter=500).fit(features, bunch.target)
    path = root / "model"
    mlflow.sklearn.save_model(
        model, str(path), input_example=features.head(2), pip_requirements=["scikit-learn"],
        serialization_format="cloudpickle",
    )  # fmt: skip
    return path, features.values.tolist(), list(features.columns)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def drive(url: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], float]:
    import aiohttp

    latencies: list[float] = []
    queue = list(bodies)
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while queue:
                body = queue.pop()
                started = time.perf_counter()
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as answer:
                    await answer.read()
                    assert answer.status == 200, answer.status
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux `/proc`), its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serve-log-") as tmp:
        root = Path(tmp)
        model, rows, columns = save_model(root)
        log = root / "inferences.jsonl"
        servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
        env = os.environ | {"PYTHONWARNINGS": "ignore", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
        for name, extra in (("plain", []), ("logging", ["--log-inferences", str(log)])):
            port = free_port()
            cmd = [PYTHON, "-m", "mlops_console", "serve", str(model), "--port", str(port), *extra]
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            servers[name] = (f"http://127.0.0.1:{port}", proc)
        try:
            import httpx

            deadline = time.monotonic() + 180
            for url, proc in servers.values():
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"server exited with {proc.returncode}")
                    try:
                        if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError("server did not start")
                    time.sleep(0.2)
            bodies = [
                json.dumps(
                    {
                        "dataframe_split": {
                            "columns": columns,
                            "data": [rows[(i * 5 + k) % 150] for k in range(5)],
                        }
                    }
                ).encode()
                for i in range(args.requests)
            ]
            sequential: dict[str, list[float]] = {name: [] for name in servers}
            burst: dict[str, list[float]] = {name: [] for name in servers}
            # Each server's CPU over the whole run, idle stretches (while the other is driven) alike for
            # both; the pause at the end lets the log's writer thread finish what is queued.
            cpu = {name: cpu_seconds(proc.pid) for name, (_, proc) in servers.items()}
            for start in range(0, args.requests, BLOCK):
                block = bodies[start : start + BLOCK]
                for name, (url, _) in servers.items():
                    latencies, _ = asyncio.run(drive(f"{url}/invocations", block, 1))
                    sequential[name] += latencies
                for name, (url, _) in servers.items():
                    _, seconds = asyncio.run(drive(f"{url}/invocations", block, CONCURRENCY))
                    burst[name].append(len(block) / seconds)
            time.sleep(2)
            cpu = {name: cpu_seconds(proc.pid) - cpu[name] for name, (_, proc) in servers.items()}
        finally:
            for _, proc in servers.values():
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        # Counted once the server has stopped: SIGTERM writes out what its log still had queued.
        logged = len(log.read_text().splitlines()) if log.exists() else 0

    def summary(name: str) -> dict[str, Any]:
        return {
            "p50_ms": pct(sequential[name], 50),
            "p99_ms": pct(sequential[name], 99),
            "rps": sorted(burst[name])[len(burst[name]) // 2],
            # The server's own CPU (scoring, HTTP, and for the logging one its writer thread) per request.
            "cpu_ms_per_request": round(cpu[name] * 1000 / (2 * args.requests), 3),
        }

    emit(
        {
            "requests": args.requests,
            "rows_per_request": 5,
            "plain": summary("plain"),
            "logging": summary("logging"),
            "rows_logged": logged,
            "rows_expected": 2 * 5 * args.requests,
        }
    )


if __name__ == "__main__":
    sys.exit(main())
