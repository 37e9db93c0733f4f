"""Background traffic for the demo endpoints, run as its own process:

    python -m mlops_console.demo.traffic --root ROOT [--exit-with-pid PID]

Each endpoint gets a request rate that swings slowly (a sine plus jitter) around its base rate,
with realistic rows from its dataset. A JSON control file, re-read every second, switches on
malformed payloads (-> 400s) or a shifted input distribution per endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlops_console.demo import state
from mlops_console.demo.datasets import load_rows, shift_row

PERIOD_S = 90.0
MAX_IN_FLIGHT = 32
MALFORMED_SHARE = 0.35
REQUEST_TIMEOUT_S = 5.0
DEFAULT_BASE_RPS = {"iris-prod": 12.0, "iris-staging": 4.0, "diabetes-prod": 8.0}


@dataclass
class Control:
    malformed: bool = False
    shift: bool = False


@dataclass
class EndpointTraffic:
    name: str
    model: str
    url: str
    base_rps: float
    phase: float
    control: Control = field(default_factory=Control)

    def rate_at(self, t: float) -> float:
        swing = 0.6 * math.sin(2 * math.pi * t / PERIOD_S + self.phase)
        return max(0.5, self.base_rps * (1 + swing) * random.uniform(0.85, 1.15))


def read_control(root: Path) -> dict[str, Control]:
    raw = state.read_json(state.traffic_control_path(root), {}) or {}
    return {
        name: Control(**{k: bool(v) for k, v in c.items() if k in ("malformed", "shift")})
        for name, c in raw.items()
    }


def good_payload(model: str, columns: list[str], rows: list[list[float]], shifted: bool) -> str:
    batch = random.sample(rows, k=random.randint(1, 5))
    if shifted:
        batch = [shift_row(model, columns, row) for row in batch]
    if random.random() < 0.5:
        return json.dumps({"dataframe_split": {"columns": columns, "data": batch}})
    return json.dumps({"dataframe_records": [dict(zip(columns, row, strict=True)) for row in batch]})


def malformed_payload(columns: list[str]) -> str:
    return random.choice(
        [
            '{"dataframe_split": {"columns": [',  # truncated JSON
            json.dumps({"dataframe_split": {"columns": ["no_such_feature"], "data": [[1.0]]}}),
            json.dumps({"rows": [[1.0] * len(columns)]}),  # unknown format key
        ]
    )


async def drive(endpoint: EndpointTraffic, root: Path, started: float) -> None:
    import aiohttp

    columns, rows = load_rows(root, endpoint.model)
    in_flight: set[asyncio.Task] = set()
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def send(body: str) -> None:
            # Errors are the point of chaos: a dead endpoint just means refused connections.
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                headers = {"Content-Type": "application/json"}
                async with session.post(f"{endpoint.url}/invocations", data=body, headers=headers) as resp:
                    await resp.read()

        while True:
            control = endpoint.control
            if control.malformed and random.random() < MALFORMED_SHARE:
                body = malformed_payload(columns)
            else:
                body = good_payload(endpoint.model, columns, rows, control.shift)
            # Backpressure: a slow endpoint must not pile up unbounded requests.
            if len(in_flight) < MAX_IN_FLIGHT:
                task = asyncio.create_task(send(body))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.sleep(random.expovariate(endpoint.rate_at(time.monotonic() - started)))


async def refresh_controls(root: Path, endpoints: dict[str, EndpointTraffic]) -> None:
    while True:
        controls = read_control(root)
        for name, endpoint in endpoints.items():
            endpoint.control = controls.get(name, Control())
        await asyncio.sleep(1.0)


async def owner_gone(pid: int | None) -> None:
    if pid is None:
        await asyncio.Event().wait()
    import psutil

    try:
        proc = psutil.Process(pid)
        while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
            await asyncio.sleep(1.0)
    except psutil.NoSuchProcess:
        return


async def serve_pager(root: Path, port: int) -> None:
    """The demo's pager: the console's apprise `json://` notifications land here, one JSON line each."""
    from aiohttp import web

    inbox = state.run_dir(root) / "pager.jsonl"

    async def receive(request: web.Request) -> web.Response:
        message = await request.json()
        with inbox.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"received_at": time.time(), **message}) + "\n")
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/pager", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def run(root: Path, exit_with_pid: int | None, pager_port: int | None = None) -> int:
    started = time.monotonic()
    endpoints = {
        ep.name: EndpointTraffic(
            name=ep.name,
            model=ep.model,
            url=ep.url,
            base_rps=DEFAULT_BASE_RPS.get(ep.name, 6.0),
            phase=random.uniform(0, 2 * math.pi),
        )
        for ep in state.load_endpoints(root)
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tasks = [asyncio.create_task(drive(ep, root, started)) for ep in endpoints.values()]
    tasks.append(asyncio.create_task(refresh_controls(root, endpoints)))
    if pager_port:
        tasks.append(asyncio.create_task(serve_pager(root, pager_port)))
    owner_task = asyncio.create_task(owner_gone(exit_with_pid))
    stop_task = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, owner_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
    for task in [*tasks, owner_task, stop_task]:
        task.cancel()
    await asyncio.gather(*tasks, owner_task, stop_task, return_exceptions=True)
    failed = [t for t in done if t in tasks and not t.cancelled() and t.exception()]
    for task in failed:
        print(f"traffic: {task.exception()!r}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_console.demo.traffic")
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--exit-with-pid", type=int, default=None)
    parser.add_argument("--pager-port", type=int, default=None, help="also receive notifications here")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.root.resolve(), args.exit_with_pid, args.pager_port))


if __name__ == "__main__":
    sys.exit(main())
