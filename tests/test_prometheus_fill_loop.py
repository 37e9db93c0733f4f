"""The store's history fill from Prometheus after a restart, and the throughput backfill, at a few
hundred endpoints among thousands of series: their answers (megabytes) are read whole and parsed off
the engine's loop, so a probed endpoint beside them keeps being probed while a range answer is parsed.
Against a loopback stand-in of Prometheus' HTTP API (a real one is in `test_prometheus_real`) and a
served endpoint on loopback."""

from __future__ import annotations

import asyncio
import json
import time
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from mlops_console.config import parse_settings
from mlops_console.core import promapi
from mlops_console.core.engine import Engine
from mlops_console.core.store import Store
from tests._loopback import FaultServer, async_wait_for, free_port, serve, stop_serving

FLEET = 300
OTHERS = 4000
"""Series of endpoints the console does not read, in every range answer (a shared Prometheus): they
make an answer of megabytes, past a probe's cap on a body."""
REMEMBERED = 600.0
"""Seconds of history the stand-in has, counted back from its start: a horizon that moved with the
clock would cut the oldest step from some signals' answers (asked seconds apart) and not others'."""


def rate_of(i: int) -> float:
    return 1.0 + i % 7


class RangePrometheus:
    """Answers the console's instant and range queries for FLEET endpoints (`endpoint="eI"`)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        oldest = time.time() - REMEMBERED

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/api/v1/query_range":
                    data = answer_range(params, oldest)
                else:
                    data = answer_instant(params["query"])
                body = json.dumps({"status": "success", "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = serve(self.port, Handler)

    def stop(self) -> None:
        stop_serving(self._server)


def value_for(query: str, i: int) -> float:
    if "histogram_quantile" in query:
        return 0.05
    if '!~"[123].*"' in query:
        return 0.0
    return rate_of(i) if "rate(" in query else 1.0


def answer_instant(query: str) -> dict[str, Any]:
    now = time.time()
    result = [
        {"metric": {"endpoint": f"e{i}"}, "value": [now, str(value_for(query, i))]} for i in range(FLEET)
    ]
    return {"resultType": "vector", "result": result}


def answer_range(params: dict[str, str], oldest: float) -> dict[str, Any]:
    start, end, step = (float(params[key]) for key in ("start", "end", "step"))
    query = params["query"]
    steps = [start + step * n for n in range(int((end - start) // step) + 1)]
    steps = [at for at in steps if at >= oldest]
    result = [
        {
            "metric": {"endpoint": f"e{i}"},
            "values": [[at, str(value_for(query, i))] for at in steps],
        }
        for i in range(FLEET + OTHERS)
    ]
    return {"resultType": "matrix", "result": result if steps else []}


@pytest.fixture(scope="module")
def prometheus() -> Iterator[RangePrometheus]:
    stand_in = RangePrometheus()
    yield stand_in
    stand_in.stop()


async def test_a_fleet_fill_leaves_probes_running(
    prometheus: RangePrometheus, server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet = "".join(
        f'[[endpoints]]\nname = "e{i}"\nurl = "http://127.0.0.1:{1000 + i}"\nsource = "prometheus"\n'
        f'prometheus_id = "e{i}"\n'
        for i in range(FLEET)
    )
    text = (
        f'[store]\npath = "{tmp_path / "console.db"}"\n'
        f'[prometheus]\nurl = "{prometheus.url}"\ninterval = "1s"\ntimeout = "10s"\ngroup_by = "endpoint"\n'
        f'[[endpoints]]\nname = "probed"\nurl = "{server.url}"\ninterval = 0.2\ntimeout = 2\n{fleet}'
    )
    settings = parse_settings(tomllib.loads(text))
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    probed = engine.endpoints["probed"]
    # While a range answer is being parsed, wait for the probed endpoint's next two probes: they can
    # only come while the parse leaves the engine's loop free (parsed on the loop, none ever would).
    seen: dict[float, list[bool]] = {}
    matrix = promapi._matrix

    def parsed(data: Any) -> Any:
        series = data.get("result") if isinstance(data, dict) else None
        if series and len(series[0]["values"]) > 1:
            step = series[0]["values"][1][0] - series[0]["values"][0][0]
            checks = seen.setdefault(step, [])
            if len(checks) < 3 and all(checks):
                before = probed.probes
                deadline = time.monotonic() + 10
                while probed.probes < before + 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                checks.append(probed.probes >= before + 2)
        return matrix(data)

    monkeypatch.setattr(promapi, "_matrix", parsed)
    stop = asyncio.Event()
    started = int(time.time() // 60)
    task = asyncio.create_task(engine.run(stop))
    names = [f"e{i}" for i in range(FLEET)]
    try:
        # Minutes from before the engine started, for every endpoint: only the fill writes those.
        await async_wait_for(
            lambda: list(store.last_minutes(names, started - 1).values()) == [started - 2] * FLEET,
            60,
            "the fleet's minutes filled",
        )
    finally:
        stop.set()
        await task
    # The throughput backfill (10 s steps) and the store's fill (60 s) were both checked, every time
    # with the probes going on.
    assert seen.get(10.0) == [True, True, True], seen
    assert seen.get(60.0) == [True, True, True], seen
    assert all(engine.endpoints[f"e{i}"].series.rps_history for i in range(FLEET))
    rows = [r for r in store.rollups("e5", 0) if r.minute < started - 1]
    assert len(rows) >= 5 and all(
        r.rps == rate_of(5) and r.p95 == 0.05 and r.error_ratio == 0.0 for r in rows
    )
    assert probed.probes > 12 and probed.health == "up"
