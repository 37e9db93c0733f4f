"""10,000 endpoints served from a real Prometheus: the engine's CPU and memory at a 15 s evaluation.

A loopback server (its own process) exposes `mlops-console serve`'s series for N endpoints, each
labelled `endpoint="eI"` with a steady request rate; a real Prometheus (Debian's binary, our own process,
temporary data directory) scrapes it every 5 s. The engine under test reads every endpoint from that
Prometheus (`source = "prometheus"`, `group_by = "endpoint"`), with its store, rules and housekeeping,
for `--seconds`; we report its process CPU (share of one core), its resident memory (peak, and at the
end of the steady state) and, as the baseline measured in the same run, the bare minimum: a process that
sends the same queries every 15 s with httpx and parses their JSON into one `{endpoint: value}` dict per
signal, for the same time, with nothing else (its CPU share and peak RSS). `--trace` adds tracemalloc's
largest allocation sites at the end of the steady state (slow: figures taken with it are not the
engine's). `--full-history` gives every endpoint half an hour of throughput history and a full latency
sparkline before measuring, as a watcher has after running that long; `--learnt-detectors` gives every
endpoint's detectors what they hold after a day (full windows, long references and daily profiles).
Also: the engine loop's worst lag (a 50 ms timer run late), and, after the engine stopped, the store's
history fill from `query_range` of every endpoint into an empty store, alone on a loop (its time, the
loop's worst lag and the RSS while it runs).

    nice -n 19 python -m bench.prometheus_fleet --endpoints 10000 --seconds 90
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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


def rss_mb(field: str = "VmRSS") -> float:
    """This process' resident memory now (`VmRSS`) or at its peak (`VmHWM`), in MB. Not `ru_maxrss`:
    a child started by `subprocess` keeps its parent's peak in it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def reset_peak() -> bool:
    """Start this process' `VmHWM` again from its resident memory now (Linux' `clear_refs`), so the
    steady state's peak is read apart from the set-up's; False where that cannot be done."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def bare(url: str, queries: list[str], group: str, every: float, seconds: float) -> None:
    """The baseline (its own process): the same instant queries, fetched and parsed, nothing else."""
    kept: list[dict[str, float]] = []
    with httpx.Client(timeout=30) as client:
        cpu0, wall0 = time.process_time(), time.monotonic()
        next_at = wall0
        while time.monotonic() - wall0 < seconds:
            kept = []
            for text in queries:
                document = json.loads(client.get(f"{url}/api/v1/query", params={"query": text}).content)
                kept.append({s["metric"][group]: float(s["value"][1]) for s in document["data"]["result"]})
            next_at += every
            time.sleep(max(0.0, min(next_at, wall0 + seconds) - time.monotonic()))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    print(json.dumps({"cpu": cpu / wall, "max_rss_mb": rss_mb("VmHWM"), "series": sum(map(len, kept))}))


async def watch_lag(lag: dict[str, float], rss: bool = False) -> None:
    """How late the running loop runs a 50 ms timer, at worst (`lag["max"]`), and with `rss` the
    peak RSS meanwhile (`lag["rss"]`)."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(0.05)
        lag["max"] = max(lag["max"], loop.time() - asked - 0.05)
        if rss:
            lag["rss"] = max(lag.get("rss", 0.0), rss_mb())


async def fill_alone(settings: Any, endpoints: dict[str, Any], root: Path) -> dict[str, float]:
    """The store's history fill of every endpoint into an empty store, on a loop of its own with
    nothing else on it: its time, how late it let the loop run a timer, the RSS meanwhile."""
    from mlops_console.core.adapters import new_http_session
    from mlops_console.core.sources.prometheus import PrometheusSource
    from mlops_console.core.store import Store

    store = Store(root / "fill.db")
    source = PrometheusSource(settings, endpoints, store)
    lag = {"max": 0.0}
    watcher = asyncio.ensure_future(watch_lag(lag, rss=True))
    started = time.monotonic()
    async with new_http_session() as http:
        await source.fill_store(http)
    took = time.monotonic() - started
    watcher.cancel()
    return {
        "store_fill_seconds": round(took, 1),
        "store_fill_loop_lag_max_ms": round(lag["max"] * 1000, 1),
        "store_fill_rss_max_mb": lag.get("rss", 0.0),
        "store_fill_minutes": store.query("SELECT COUNT(*) AS n FROM rollups")[0]["n"],
        "store_fill_queries": source.queries_sent,
    }


def fill_history(engine: Any) -> None:
    """Every endpoint's throughput history and latency sparkline as after half an hour of rounds (the
    bench's Prometheus has minutes of data: the baseline and the status rows would be measured on
    short histories, cheaper than a watcher's steady state)."""
    from mlops_console.core.endpoint_state import PROM_LATENCY_POINTS
    from mlops_console.core.packed import PackedFloats
    from mlops_console.core.series import RPS_KEEP, RPS_STEP

    for state in engine.endpoints.values():
        ring = state.series.rps_history
        newest = ring[-1] if len(ring) else (time.time(), 1.0)
        points = [
            (newest[0] - k * RPS_STEP, newest[1] * (1 + 0.01 * (k % 7)))
            for k in range(int(RPS_KEEP / RPS_STEP))
        ]
        ring.clear()
        ring.extend(reversed(points))
        state.prom_latencies = PackedFloats(0.01 + 0.0001 * k for k in range(PROM_LATENCY_POINTS))


def learn_detectors(engine: Any) -> None:
    """Every endpoint's detectors as after a day of rounds, loaded the way a restarted watcher loads
    what they learnt: each robust detector's window and long reference full and its daily profile
    learnt, each binomial one's window full (a watcher's detectors hold that much from then on; the
    bench's minutes would measure them nearly empty)."""
    from mlops_console.core.conditions import DetectedRules

    now = time.time()
    for state in engine.endpoints.values():
        learnt = state.detected.to_state()
        for saved in learnt.values():
            detector = saved["evaluator"]["detector"]
            params, inner = detector["params"], detector["state"]
            if detector["detector"] == "robust":
                level = (inner.get("window") or [[now, 0.0]])[-1][1]
                longs = params["long_window"] // params["long_step"]
                step = 60.0 * params["long_step"]
                polls = params["window"]
                inner["window"] = [[now - 60.0 * (polls - k), level] for k in range(polls)]
                inner["long"] = [[now - step * (longs - k), level] for k in range(longs)]
                inner["accepted"] = params["long_window"]
                bins = params["season_bins"]
                inner["profile"] = {"profile": [level] * bins, "first_at": now - 2 * 86400, "visit": None}
            elif detector["detector"] == "binomial":
                inner["window"] = [[1.0, 100.0]] * params["window"]  # the fleet's 1 % of errors
                inner["accepted"] = params["window"]
        state.detected = DetectedRules()
        state.detected.load(learnt)


def run(
    n: int, seconds: float, trace: bool = False, full_history: bool = False, learnt: bool = False
) -> dict[str, object]:
    from mlops_console.config import parse_settings
    from mlops_console.core.engine import Engine
    from mlops_console.core.gc_tuning import freeze_when, settled
    from mlops_console.core.gc_tuning import tune as tune_gc
    from mlops_console.core.heap import map_large_blocks
    from mlops_console.core.store import Store

    map_large_blocks()  # as `watch` does, first
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
            f'[prometheus]\nurl = "{url}"\ninterval = "15s"\ntimeout = "60s"\ngroup_by = "endpoint"\n'
            f"default_source = \"prometheus\"\n[prometheus.queries.mlflow]\nup = '{up}'\n"
        )
        text += "".join(
            f'[[endpoints]]\nname = "e{i}"\nurl = "http://127.0.0.1:{target}"\nprometheus_id = "e{i}"\n'
            for i in range(n)
        )
        rss_floor = rss_mb()
        if trace:
            tracemalloc.start(3)
        settings = parse_settings(tomllib.loads(text))
        del text
        engine = Engine(settings, Store(settings.store.path))
        tune_gc()  # as `watch` does

        lag = {"max": 0.0}

        async def measure() -> tuple[float, float, int]:
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(watch_lag(lag))
            task = asyncio.ensure_future(engine.run(stop))
            frozen = asyncio.ensure_future(freeze_when(lambda: settled(engine)))  # as `watch` does
            # The first round (lease, history backfill, first evaluation) is start-up, not steady state.
            started = time.monotonic()
            while engine.prometheus is None or engine.prometheus.state != "ok" or not frozen.done():
                if time.monotonic() - started > 300:
                    raise SystemExit("no evaluation round answered in 5 minutes")
                await asyncio.sleep(0.2)
            if full_history or learnt:
                before = lag["max"]
                if full_history:
                    fill_history(engine)
                if learnt:
                    learn_detectors(engine)
                    # A watcher restores what its detectors learnt before it settles, so they are
                    # among the objects it freezes (`gc_tuning`); made after the freeze, they would be
                    # walked by every full collection, as in no watcher.
                    gc.collect()
                    gc.freeze()
                await asyncio.sleep(0.1)
                lag["max"] = before  # the bench's own filling held the loop, not the engine
            steady["setup_peak"] = rss_mb("VmHWM")
            steady["peak_reset"] = reset_peak()
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
            rounds = engine.prometheus.queries_sent
            if trace:
                top = tracemalloc.take_snapshot().statistics("lineno")[:25]
                print("\n".join(str(stat) for stat in top), file=sys.stderr)
            steady["rss"] = rss_mb()
            steady["peak"] = rss_mb("VmHWM")
            stop.set()
            await task
            watcher.cancel()
            return cpu, wall, rounds

        steady: dict[str, float] = {}
        cpu, wall, queries = asyncio.run(measure())
        states = list(engine.endpoints.values())
        assert engine.prometheus is not None
        signals = next(iter(engine.prometheus.groups()))
        texts = [signals.requests, signals.errors, *(q for _, q in signals.latency), signals.up]
        baseline = subprocess.run(
            [PYTHON, "-m", "bench.prometheus_fleet", "--bare", url, json.dumps(texts), str(seconds)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
        bare_figures = json.loads(baseline.stdout)
        return {
            "endpoints": n,
            "seconds": round(wall, 1),
            "full_history": full_history,
            "learnt_detectors": learnt,
            "engine_cpu_share_of_core": round(cpu / wall, 4),
            "bare_queries_cpu_share_of_core": round(bare_figures["cpu"], 4),
            "max_rss_mb": steady["peak"] if steady["peak_reset"] else None,
            "max_rss_setup_mb": steady["setup_peak"],
            "rss_at_end_mb": steady["rss"],
            "rss_before_engine_mb": rss_floor,
            "bare_queries_max_rss_mb": bare_figures["max_rss_mb"],
            "bare_queries_series_read": bare_figures["series"],
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "queries_sent": queries,
            "endpoints_with_rate": sum(1 for s in states if s.rps is not None),
            "endpoints_up": sum(1 for s in states if s.health == "up"),
            "prometheus": engine.prometheus.state if engine.prometheus else None,
            "loop_lag_max_ms": round(lag["max"] * 1000, 1),
            **asyncio.run(fill_alone(settings, engine.endpoints, root)),
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
    parser.add_argument("--trace", action="store_true", help="print tracemalloc's largest allocation sites")
    parser.add_argument(
        "--full-history", action="store_true", help="measure with half an hour of history for every endpoint"
    )
    parser.add_argument(
        "--learnt-detectors", action="store_true", help="measure with every detector as after a day of rounds"
    )
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bare", nargs=3, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    if args.bare is not None:
        url, texts, seconds = args.bare
        bare(url, json.loads(texts), "endpoint", 15.0, float(seconds))
        return 0
    figures = run(args.endpoints, args.seconds, args.trace, args.full_history, args.learnt_detectors)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
