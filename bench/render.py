"""Scenario 2 worker: the console headless (App.run_test) with N endpoints updating every second.

`python -m bench.render --endpoints 200 --seconds 60` prints one JSON line: the process's CPU share
(of one core) over the window, minus the synthetic source's own CPU (and the same per snapshot
applied, comparable when a loaded machine lets a run apply fewer than one a second), p50/p99 of
the time spent applying one snapshot (`on_snapshot_received`: status line and the overview table's
cells), plus p99 of update-to-painted (the handler plus the refresh that follows it).
The console is the real `MlopsConsole` (store polls, host sampler, overview screen); only the
snapshot source is synthetic, so the engine's CPU is not counted here (scenario 1 measures it).

`--mode bare` is the baseline: a bare Textual `App` holding one `DataTable` with the overview's
columns and widths and the same rows, fed by the same source at the same rate; it writes the same
figures as plain strings (`update_cell` only where a value changed) and has no status line, host
panel, store polls, styles or sorting. `--filter-keys` also times a filter keystroke in the
overview: the filter applied to the table and the next frame painted.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import emit, pct


def make_snapshot(n: int, tick: int) -> Any:
    from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot

    now = time.time()
    endpoints = []
    for i in range(n):
        base = 0.005 + (i % 17) * 0.002
        wobble = 1 + 0.3 * math.sin(tick / 5 + i)
        down = (i + tick // 20) % 37 == 0
        endpoints.append(
            EndpointSnapshot(
                name=f"endpoint-{i:04d}",
                url=f"http://10.1.{i // 250}.{i % 250}:8080",
                adapter="mlflow",
                model=f"model-{i % 12}",
                alias="production",
                health="down" if down else ("degraded" if i % 23 == 0 else "up"),
                expected_version="3",
                served_version="2" if i % 41 == 0 else "3",
                p50=base * wobble,
                p95=base * wobble * 2.2,
                p99=base * wobble * 3.1,
                latency_source="metrics",
                rps=20 + 5 * math.sin(tick / 7 + i),
                rps_5m=20.0,
                error_ratio=0.06 if down else 0.001 * (i % 5),
                latency_history=[base * (1 + 0.3 * math.sin((tick - k) / 5 + i)) for k in range(60)],
                rps_history=[20.0] * 60,
                last_ok_at=now - (30 if down else 0.5),
                last_probe_at=now,
                consecutive_failures=3 if down else 0,
                probes=tick,
                firing=["down"] if down else [],
            )
        )
    return EngineSnapshot(at=now, endpoints=endpoints, registry="ok", owner="this process")


class TickingSource:
    """A fresh snapshot every `period` seconds from a thread; counts its own CPU to subtract it."""

    def __init__(self, n: int, period: float = 1.0) -> None:
        self.n, self.period = n, period
        self._stop = threading.Event()
        self.cpu = 0.0
        self.sent = 0

    def start(self, on_snapshot: Any) -> None:
        def run() -> None:
            tick = 0
            while True:
                t = time.thread_time()
                snapshot = make_snapshot(self.n, tick)
                self.cpu += time.thread_time() - t
                on_snapshot(snapshot)
                self.sent += 1
                tick += 1
                if self._stop.wait(self.period):
                    return

        threading.Thread(target=run, name="bench-source", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


BARE_COLUMNS = [
    ("health", 10),
    ("endpoint", 22),
    ("model@alias", 22),
    ("want", 5),
    ("serves", 7),
    ("p50", 7),
    ("p95", 7),
    ("p99", 7),
    ("req/s", 7),
    ("err%", 6),
    ("latency", 14),
    ("drift", 7),
    ("last ok", 7),
]


def bare_cells(e: Any, now: float) -> tuple[str, ...]:
    """The overview's figures as plain strings: what the bare table shows."""
    from mlops_console.core import formatting
    from mlops_console.tui.text import sparkline

    return (
        e.health,
        e.name,
        f"{e.model}@{e.alias}",
        e.expected_version or "",
        e.served_version or "",
        formatting.latency(e.p50),
        formatting.latency(e.p95),
        formatting.latency(e.p99),
        formatting.rate(e.rps),
        formatting.ratio(e.error_ratio),
        sparkline(e.latency_history, 14),
        "",
        formatting.age(e.last_ok_at, now),
    )


def figures(
    mode: str,
    n: int,
    wall: float,
    cpu: float,
    src: float,
    rows: object,
    applied: list[float],
    painted: list[float],
) -> dict[str, object]:
    """The figures both modes print: `cpu` is the app's own CPU time (the source's taken out)."""
    return {
        "mode": mode,
        "endpoints": n,
        "seconds": round(wall, 1),
        "updates": len(applied),
        "table_rows": rows,
        "cpu_share": cpu / wall,
        "cpu_ms_per_update": cpu / max(len(applied), 1) * 1000,
        "source_cpu_share": src / wall,
        "apply_p50_ms": (pct(applied, 50) or 0) * 1000,
        "apply_p99_ms": (pct(applied, 99) or 0) * 1000,
        "painted_p99_ms": (pct(painted, 99) or 0) * 1000,
    }


async def measure_bare(n: int, seconds: float, warmup: float) -> dict[str, Any]:
    from textual.app import App, ComposeResult
    from textual.message import Message
    from textual.widgets import DataTable

    class Snap(Message):
        def __init__(self, snapshot: Any) -> None:
            super().__init__()
            self.snapshot = snapshot

    apply_times: list[float] = []
    painted: list[float] = []
    counting = False
    source = TickingSource(n)

    class Bare(App):
        def compose(self) -> ComposeResult:
            self.table: DataTable = DataTable(cursor_type="row")
            yield self.table

        def on_mount(self) -> None:
            self.shown: dict[str, tuple[str, ...]] = {}
            for label, width in BARE_COLUMNS:
                self.table.add_column(label, key=label, width=width)
            # Posted, as the console's source posts it (call_from_thread would hold the source back).
            source.start(lambda snapshot: self.post_message(Snap(snapshot)))

        def on_snap(self, message: Snap) -> None:
            snapshot = message.snapshot
            t = time.perf_counter()
            now = time.time()
            for e in snapshot.endpoints:
                cells = bare_cells(e, now)
                old = self.shown.get(e.name)
                if old is None:
                    self.table.add_row(*cells, key=e.name)
                else:
                    for (label, _), new, was in zip(BARE_COLUMNS, cells, old, strict=True):
                        if new != was:
                            self.table.update_cell(e.name, label, new)
                self.shown[e.name] = cells
            if counting:
                apply_times.append(time.perf_counter() - t)
                self.call_after_refresh(lambda: painted.append(time.perf_counter() - t))

    app = Bare()
    async with app.run_test(size=(180, 60)) as pilot:
        await asyncio.sleep(warmup)
        counting = True
        cpu0, src0, t0 = time.process_time(), source.cpu, time.monotonic()
        await asyncio.sleep(seconds)
        cpu, src, wall = time.process_time() - cpu0, source.cpu - src0, time.monotonic() - t0
        counting = False
        rows = app.table.row_count
        source.stop()
        await pilot.pause()
    return figures("bare", n, wall, cpu - src, src, rows, apply_times, painted)


async def time_filter_keys(
    app: Any, pilot: Any, keys: str, source: TickingSource
) -> tuple[list[float], list[float]]:
    """Keystroke → filter applied to the table → next frame painted, per key typed into the filter bar:
    wall time, and the app's CPU time over it (the source's taken out; on a loaded machine the wall
    time is mostly waiting for a core)."""
    from mlops_console.tui.widgets.filter_bar import FilterBar

    await pilot.press("slash")
    await pilot.pause()
    bar = app.screen.query_one(FilterBar)
    screen = app.screen
    times: list[float] = []
    cpu: list[float] = []
    for key in keys:
        # Typed as the Input does it (its value changes, it posts Applied); not `pilot.press`, which
        # also waits until the whole app is idle, and at 10,000 rows a snapshot is always on its way.
        painted = asyncio.Event()
        t, c, src = time.perf_counter(), time.process_time(), source.cpu
        bar.insert_text_at_cursor(key)
        while screen.filter_text != bar.value:
            await asyncio.sleep(0.001)
        app.call_after_refresh(painted.set)
        await painted.wait()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c - (source.cpu - src))
    return times, cpu


async def measure(n: int, seconds: float, warmup: float, filter_keys: str = "") -> dict[str, Any]:
    from mlops_console.config import parse_settings
    from mlops_console.core.store import Store
    from mlops_console.tui.app import MlopsConsole

    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    settings = parse_settings(
        {
            "store": {"path": str(tmp / "console.db")},
            "endpoints": [
                {
                    "name": f"endpoint-{i:04d}",
                    "url": f"http://10.1.{i // 250}.{i % 250}:8080",
                    "interval": 1.0,
                }
                for i in range(n)
            ],
        }
    )
    apply_times: list[float] = []
    painted: list[float] = []
    counting = False

    import mlops_console.tui.app as app_module

    class TimedConsole(MlopsConsole):
        CSS_PATH = str(Path(app_module.__file__).parent / "console.tcss")

        def on_snapshot_received(self, message: Any) -> None:
            t = time.perf_counter()
            super().on_snapshot_received(message)
            # Textual calls the handler of every class in the MRO: without this, MlopsConsole's would
            # run a second time after this one and every snapshot would be applied twice.
            message.prevent_default()
            if counting:
                apply_times.append(time.perf_counter() - t)
                self.call_after_refresh(lambda: painted.append(time.perf_counter() - t))

    source = TickingSource(n)
    app = TimedConsole(
        settings, snapshot_source=source, store=Store(settings.store.path), actor="bench@local"
    )
    async with app.run_test(size=(180, 60)) as pilot:
        await asyncio.sleep(warmup)
        counting = True
        cpu0, src0, t0 = time.process_time(), source.cpu, time.monotonic()
        await asyncio.sleep(seconds)
        cpu, src, wall = time.process_time() - cpu0, source.cpu - src0, time.monotonic() - t0
        counting = False
        rows = getattr(getattr(app.screen, "table", None), "row_count", None)
        filter_times, filter_cpu = (
            await time_filter_keys(app, pilot, filter_keys, source) if filter_keys else ([], [])
        )
        filtered_rows = getattr(getattr(app.screen, "table", None), "row_count", None)
        source.stop()
        await pilot.pause()
    return {
        **figures("overview", n, wall, cpu - src, src, rows, apply_times, painted),
        **(
            {
                "filter_keys": filter_keys,
                "filter_ms": [round(x * 1000, 1) for x in filter_times],
                "filter_max_ms": max(filter_times) * 1000,
                "filter_cpu_ms": [round(x * 1000, 1) for x in filter_cpu],
                "filtered_rows": filtered_rows,
            }
            if filter_times
            else {}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoints", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--mode", choices=["overview", "bare"], default="overview")
    parser.add_argument("--filter-keys", default="", help="type these into the overview's filter, timed")
    args = parser.parse_args()
    if args.mode == "bare":
        emit(asyncio.run(measure_bare(args.endpoints, args.seconds, args.warmup)))
    else:
        emit(asyncio.run(measure(args.endpoints, args.seconds, args.warmup, args.filter_keys)))


if __name__ == "__main__":
    main()
