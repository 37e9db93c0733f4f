"""`demo` (the console on a self-contained environment) and `serve` (the scoring server)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from mlops_console import locations
from mlops_console.commands.common import EXIT_FAILED, EXIT_OK, CommandError
from mlops_console.config import Settings, load_settings
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot

CHECK_DEADLINE = 50.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser("demo", help="run the console on a built-in demo: real models, servers, traffic")
    demo.add_argument("--reset", action="store_true", help="rebuild the demo registry from scratch")
    demo.add_argument("--check", action="store_true", help="headless: verify the demo works, then exit")
    demo.add_argument("--root", type=Path, default=None, help=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo)

    from mlops_console.serve.cli import add_arguments, run

    serve = sub.add_parser("serve", help="serve an MLflow model with /metrics and /model-info")
    add_arguments(serve)
    serve.set_defaults(func=run)


def cmd_demo(args: argparse.Namespace) -> int:
    from mlops_console.demo.environment import DemoEnvironment
    from mlops_console.demo.processes import EndpointStartError
    from mlops_console.demo.registry import build_registry

    root = args.root or locations.demo_dir()
    started = time.monotonic()
    print(f"demo: preparing registry in {root} ...", file=sys.stderr, flush=True)
    build_registry(root, reset=args.reset)
    env = DemoEnvironment(root)
    try:
        print("demo: starting model servers and traffic ...", file=sys.stderr, flush=True)
        try:
            env.start()
        except EndpointStartError as exc:
            raise CommandError(f"demo could not start: {exc}") from None
        config_path = env.write_config(root / "demo.toml")
        settings = load_settings(config_path)
        print(
            f"demo: environment up in {time.monotonic() - started:.1f}s (config {config_path})",
            file=sys.stderr,
        )
        if args.check:
            return _check(settings, started)
        from mlops_console.tui.app import run_console

        return run_console(settings, demo=env)
    finally:
        env.stop()


def _check(settings: Settings, started: float) -> int:
    """Wait until the engine reports every endpoint up with latency and throughput, or explain which not."""
    from mlops_console.commands.pipelines import pipelines_table
    from mlops_console.commands.status import status_table
    from mlops_console.core.engine import Engine
    from mlops_console.core.store import Store

    store = Store(settings.store.path)

    def pipelines_ready(snapshot: EngineSnapshot) -> bool:
        # The batch-scoring job logged a run and the engine read it.
        return all(p.state == "ok" and p.last_run is not None for p in snapshot.pipelines)

    def ready(endpoint: EndpointSnapshot) -> bool:
        # The inference log is read (evaluated without error), besides health, latency and throughput.
        quality = endpoint.quality is not None and endpoint.quality.error is None
        return endpoint.health == "up" and endpoint.p95 is not None and endpoint.rps is not None and quality

    async def run() -> int:
        stop = asyncio.Event()
        engine = Engine(settings, store)
        task = asyncio.create_task(engine.run(stop))
        deadline = time.monotonic() + CHECK_DEADLINE
        try:
            while time.monotonic() < deadline:
                snapshot = engine.snapshot()
                if (
                    snapshot.endpoints
                    and all(ready(e) for e in snapshot.endpoints)
                    and snapshot.registry == "ok"
                    and pipelines_ready(snapshot)
                ):
                    print(status_table(snapshot.endpoints))
                    if snapshot.pipelines:
                        print(pipelines_table(snapshot.pipelines, snapshot.at))
                    print(
                        f"demo check passed in {time.monotonic() - started:.1f}s: "
                        f"{len(snapshot.endpoints)} endpoints up, traffic flowing, inference logs read, "
                        f"{len(snapshot.pipelines)} pipeline logging runs, registry ok"
                    )
                    return EXIT_OK
                await asyncio.sleep(0.5)
            snapshot = engine.snapshot()
            print(status_table(snapshot.endpoints))
            missing = [
                f"{e.name}: health {e.health}, p95 {'missing' if e.p95 is None else 'ok'}, "
                f"throughput {'unknown' if e.rps is None else 'ok'}, inference log "
                + ("not read yet" if e.quality is None else (e.quality.error or "ok"))
                for e in snapshot.endpoints
                if not ready(e)
            ]
            if snapshot.registry != "ok":
                missing.append(f"registry: {snapshot.registry}")
            missing += [
                f"pipeline {p.name}: {p.state}" + ("" if p.last_run else ", no run logged yet")
                for p in snapshot.pipelines
                if p.state != "ok" or p.last_run is None
            ]
            print(
                "demo check FAILED after {:.0f}s:\n  {}".format(CHECK_DEADLINE, "\n  ".join(missing)),
                file=sys.stderr,
            )
            return EXIT_FAILED
        finally:
            stop.set()
            await task

    return asyncio.run(run())
