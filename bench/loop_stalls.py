"""What holds the engine's event loop: scenario 1's engine (or bare loop) with a stall tracer beside it.

`python -m bench.loop_stalls --n 1000 --duration 70 [--mode engine|aiohttp] [--port P]` prints one
JSON line: the probes' lag as `bench.engine_scale` measures it, and every stall of the loop (a
monitor task woke later than `--threshold` ms past its time), each with how long it lasted, the loop
thread's own CPU in it (the rest it waited: for the GIL, another thread, the machine), the garbage
collections in it, and the callbacks in it that ran over 5 ms (a task's name and where it stopped). Its
figures are for finding causes, not for the CPU ratio (`bench.engine_scale`). A duration over 60 s covers
at least one turn of the minute (the detectors' judgements).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from typing import Any

from bench import engine_scale
from bench.common import emit, loopserver, pct

SLOW_CALLBACK = 0.005
"""Seconds: a callback of the loop that ran longer is noted, with what it was."""


def _label(handle: asyncio.Handle) -> str:
    """What a callback was: a task's name and where its coroutine stopped after this step, or the
    function called."""
    callback = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        where = []
        coro: Any = task.get_coro()
        while coro is not None and len(where) < 8:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is None:
                break
            where.append(f"{frame.f_code.co_name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        return f"task {task.get_name()} at {' > '.join(where) or 'its end'}"
    return getattr(callback, "__qualname__", repr(callback))[:120]


class StallTracer:
    """A monitor task noting how late it wakes, every callback of the loop over `SLOW_CALLBACK`, and
    every garbage collection, each with the loop thread's own CPU in it."""

    def __init__(self, threshold: float, period: float = 0.005) -> None:
        self.threshold, self.period = threshold, period
        self.stalls: list[tuple[float, float, float, float]] = []
        self.slow: list[tuple[float, float, float, str]] = []
        self.gcs: list[tuple[float, float, float, int]] = []
        self._gc_started = (0.0, 0.0)
        self._run: Any = None

    def _gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = (time.monotonic(), time.thread_time())
        else:
            started, cpu = self._gc_started
            self.gcs.append((started, time.monotonic(), time.thread_time() - cpu, info["generation"]))

    async def monitor(self) -> None:
        while True:
            due = time.monotonic() + self.period
            cpu, process = time.thread_time(), time.process_time()
            await asyncio.sleep(self.period)
            woke = time.monotonic()
            if woke - due >= self.threshold:
                loop_cpu = time.thread_time() - cpu
                self.stalls.append((due, woke, loop_cpu, time.process_time() - process - loop_cpu))

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        gc.callbacks.append(self._gc)
        self._run = run = asyncio.Handle._run
        slow = self.slow

        def timed(handle: asyncio.Handle) -> None:
            started, cpu = time.monotonic(), time.thread_time()
            run(handle)
            wall = time.monotonic() - started
            if wall >= SLOW_CALLBACK:
                slow.append((started, wall, time.thread_time() - cpu, _label(handle)))

        asyncio.Handle._run = timed  # type: ignore[method-assign]
        self._task = loop.create_task(self.monitor())

    def stop(self, t0: float) -> list[dict[str, Any]]:
        self._task.cancel()
        gc.callbacks.remove(self._gc)
        asyncio.Handle._run = self._run  # type: ignore[method-assign]
        out = []
        for start, end, loop_cpu, others_cpu in self.stalls:
            slow = [s for s in self.slow if s[0] <= end and s[0] + s[1] >= start]
            gcs = [g for g in self.gcs if g[1] >= start and g[0] <= end]
            out.append(
                {
                    "at_s": round(start - t0, 3),
                    "second_of_minute": round((time.time() - (time.monotonic() - start)) % 60, 2),
                    "ms": round((end - start) * 1000, 1),
                    "loop_cpu_ms": round(loop_cpu * 1000, 1),
                    "other_threads_cpu_ms": round(others_cpu * 1000, 1),
                    "gc": [f"gen{g} {(b - a) * 1000:.1f} ms ({cpu * 1000:.1f} cpu)" for a, b, cpu, g in gcs],
                    "slow_callbacks": [
                        f"{wall * 1000:.1f} ms ({cpu * 1000:.1f} cpu) {label}" for _, wall, cpu, label in slow
                    ],
                }
            )
        return out


async def traced(mode: str, n: int, duration: float, port: int, threshold: float) -> dict[str, Any]:
    tracer = StallTracer(threshold / 1000)
    tracer.start(asyncio.get_running_loop())
    t0 = time.monotonic()
    if mode == "engine":
        out = await engine_scale.engine_loop(n, 1.0, duration, port)
    else:
        out = await engine_scale.bare_loop(mode, n, 1.0, duration, port)
    out["stalls"] = tracer.stop(t0 + engine_scale.WARMUP)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["engine", "aiohttp"], default="engine")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=70.0)
    parser.add_argument("--port", type=int)
    parser.add_argument("--threshold", type=float, default=30.0, help="ms late that count as a stall")
    args = parser.parse_args()

    def run(port: int) -> dict[str, Any]:
        return asyncio.run(traced(args.mode, args.n, args.duration, port, args.threshold))

    if args.port:
        out = run(args.port)
    else:
        with loopserver() as port:
            out = run(port)
    lags, stalls = out["lags"], out["stalls"]
    emit(
        {
            "mode": args.mode,
            "n": args.n,
            "done_ratio": out["probes"] / (args.n * out["wall"]),
            "lag_p50_ms": (pct(lags, 50) or 0) * 1000,
            "lag_p99_ms": (pct(lags, 99) or 0) * 1000,
            "cpu_share": out["cpu"] / out["wall"],
            "stall_ms_total": round(sum(s["ms"] for s in stalls), 1),
            "stalls": sorted(stalls, key=lambda s: -s["ms"]),
        }
    )


if __name__ == "__main__":
    main()
