"""10,000 endpoints served from a real Prometheus: the engine's CPU and memory at a 15 s evaluation.

A loopback server (its own process) exposes `mlops-console serve`'s series for N endpoints, each
labelled `endpoint="eI"` with a steady request rate; a real Prometheus (Debian's binary, our own process,
temporary data directory) scrapes it every 5 s. The engine under test reads every endpoint from that
Prometheus (`source = "prometheus"`, `group_by = "endpoint"`), with its store, rules and housekeeping,
for `--seconds`; we report its process CPU (share of one core) and peak RSS.

    nice -n 19 python -m bench.prometheus_fleet --endpoints 10000 --seconds 90
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from bench.common import PYTHON, ROOT

BUCKETS = ("0.01", "0.1", "1.0", "+Inf")


def exposition(n: int, t: float) -> bytes:
    lines = ["# TYPE http_requests_total counter", "# TYPE http_request_duration_seconds histogram"]
    for i in range(n):
        requests = int(t * (1 + i % 5))
        labels = f'endpoint="e{i}",handler="/invocations"'
        lines.append(f'http_requests_total{{{labels},status="200"}} {requests}')
        lines.append(f'http_requests_total{{{labels},status="500"}} {requests // 100}')
        for bound, share in zip(BUCKETS, (0.5, 0.95, 1.0, 1.0), strict=True):
            lines.append(
                f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {int(requests * share)}'
            )
        lines.append(f"http_request_duration_seconds_count{{{labels}}} {requests}")
        lines.append(f"http_request_duration_seconds_sum{{{labels}}} {requests * 0.02:.3f}")
    return ("\n".join(lines) + "\n").encode()


def serve(n: int) -> None:
    """The fleet's /metrics (run as a child process: its CPU is not the engine's)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(n, time.time() - 1.7e9)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(n: int, seconds: float) -> dict[str, object]:
    from mlops_console.config import parse_settings
    from mlops_console.core.engine import Engine
    from mlops_console.core.store import Store

    binary = shutil.which("prometheus")
    assert binary, "apt-get install -y prometheus"
    root = Path(tempfile.mkdtemp(prefix="bench-prom-"))
    fleet = subprocess.Popen(
        [PYTHON, "-m", "bench.prometheus_fleet", "--serve", str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fleet.stdout is not None
    target = int(fleet.stdout.readline())
    port = free_port()
    config = {
        "global": {"scrape_interval": "5s", "scrape_timeout": "5s"},
        "scrape_configs": [{"job_name": "fleet", "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}],
    }
    (root / "prometheus.yml").write_text(json.dumps(config))
    prom = subprocess.Popen(
        [binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(root / "prometheus.log").open("wb"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        query = 'count(sum by (endpoint) (rate(http_requests_total{handler="/invocations"}[1m])))'
        while time.monotonic() < deadline:
            try:
                result = httpx.get(f"{url}/api/v1/query", params={"query": query}, timeout=10).json()
                if result["data"]["result"] and float(result["data"]["result"][0]["value"][1]) >= n:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(1)
        else:
            raise SystemExit("Prometheus never had a rate for every endpoint")
        up = 'max by ({group}) (http_requests_total{{{selector}status="200"}} >bool 0)'
        text = (
            f'[store]\npath = "{root / "console.db"}"\n'
            f'[prometheus]\nurl = "{url}"\ninterval = "15s"\ntimeout = "10s"\ngroup_by = "endpoint"\n'
            f"default_source = \"prometheus\"\n[prometheus.queries.mlflow]\nup = '{up}'\n"
        )
        text += "".join(
            f'[[endpoints]]\nname = "e{i}"\nurl = "http://127.0.0.1:{target}"\nprometheus_id = "e{i}"\n'
            for i in range(n)
        )
        settings = parse_settings(tomllib.loads(text))
        engine = Engine(settings, Store(settings.store.path))

        async def measure() -> tuple[float, float, int]:
            stop = asyncio.Event()
            task = asyncio.ensure_future(engine.run(stop))
            # The first round (lease, history backfill, first evaluation) is start-up, not steady state.
            started = time.monotonic()
            while engine.prometheus is None or engine.prometheus.state == "connecting":
                if time.monotonic() - started > 300:
                    raise SystemExit("no evaluation round finished in 5 minutes")
                await asyncio.sleep(0.2)
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            rounds = engine.prometheus.queries_sent
            stop.set()
            await task
            return cpu, wall, rounds

        cpu, wall, queries = asyncio.run(measure())
        states = list(engine.endpoints.values())
        return {
            "endpoints": n,
            "seconds": round(wall, 1),
            "engine_cpu_share_of_core": round(cpu / wall, 4),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "queries_sent": queries,
            "endpoints_with_rate": sum(1 for s in states if s.rps is not None),
            "endpoints_up": sum(1 for s in states if s.health == "up"),
            "prometheus": engine.prometheus.state if engine.prometheus else None,
        }
    finally:
        prom.terminate()
        prom.wait(30)
        fleet.terminate()
        fleet.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    print(json.dumps(run(args.endpoints, args.seconds), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
