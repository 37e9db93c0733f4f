"""Take SVG screenshots of every console screen from a real run.

    .venv/bin/python scripts/screenshots.py --demo            # start the demo environment (real models)
    .venv/bin/python scripts/screenshots.py --config my.toml  # or against any config's endpoints
    .venv/bin/python scripts/screenshots.py --sample          # deterministic sample data, no servers

The console runs headless (`App.run_test`) at 160x48 (plus one 80x24 overview) with its real engine
probing the endpoints. With `--demo`, one endpoint is made to fail so alerts fire, and one alert is
acknowledged and one silenced through the UI, so every screen has something to show.
Writes `screenshots/*.svg` (and PNGs when `rsvg-convert` is installed).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDE = (160, 48)
NARROW = (80, 24)


async def settle(pilot: Any, pause: float = 0.3) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(pause)


async def wait_until(pilot: Any, condition: Any, timeout: float, what: str) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            print(f"screenshots: gave up waiting for {what} after {timeout:.0f}s", file=sys.stderr)
            return False
        await pilot.pause(0.5)
    return True


async def shoot(make_app: Any, out: Path, env: Any = None, first_wait: float = 20.0) -> list[Path]:
    from mlops_console.tui.dialogs.ack import AckDialog
    from mlops_console.tui.dialogs.confirm_change import ChangeDialog
    from mlops_console.tui.dialogs.silence import SilenceDialog
    from mlops_console.tui.screens.alert_timeline import AlertTimelineScreen
    from mlops_console.tui.screens.alerts import AlertsScreen
    from mlops_console.tui.screens.audit import AuditScreen
    from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
    from mlops_console.tui.screens.models import ModelsScreen
    from mlops_console.tui.screens.pipeline_runs import PipelineRunsScreen
    from mlops_console.tui.screens.pipelines import PipelinesScreen
    from mlops_console.tui.screens.quality import QualityScreen

    taken: list[Path] = []

    async def fresh(pilot: Any) -> None:
        """Wait (bounded) for a recent snapshot, so no screenshot shows a stale engine."""
        app = pilot.app
        await wait_until(
            pilot,
            lambda: app.snapshot is not None and app.clock() - app.snapshot.at < 3,
            60,
            "a fresh snapshot",
        )

    async def on(pilot: Any, screen: type, timeout: float = 30) -> bool:
        """Keys are queued behind a busy app: wait for the screen they lead to before shooting."""
        return await wait_until(pilot, lambda: isinstance(pilot.app.screen, screen), timeout, screen.__name__)

    def save(app: Any, name: str) -> None:
        path = out / f"{name}.svg"
        app.save_screenshot(str(path))
        taken.append(path)
        print(f"screenshots: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")

    app = make_app()
    async with app.run_test(size=WIDE) as pilot:
        # enough probes for percentiles, rates and sparklines
        await wait_until(
            pilot,
            lambda: (
                app.snapshot is not None
                and all(e.p95 is not None for e in app.snapshot.endpoints if e.health == "up")
            ),
            first_wait,
            "latency data",
        )
        await pilot.pause(first_wait / 2)
        if env is not None:
            # The demo's "shifted inputs" on iris-prod, once its reference (its first rows) is learned.
            def iris_quality() -> Any:
                return next((e.quality for e in app.snapshot.endpoints if e.name == "iris-prod"), None)

            await wait_until(
                pilot,
                lambda: (q := iris_quality()) is not None and q.drift_share is not None,
                300,
                "iris-prod's reference",
            )
            await asyncio.to_thread(env.shift, "iris-prod", True)
            # The batch job scores a tenth of its rows from now on: a metric off its usual.
            await asyncio.to_thread(env.pipeline, "batch-scoring", "fraction")
            victim = app.snapshot.endpoints[-1].name
            await asyncio.to_thread(env.fail, victim, 0.6)
            await wait_until(
                pilot, lambda: (app.alert_counts or {}).get("firing", 0) >= 1, 90, "an alert to fire"
            )
            await wait_until(
                pilot,
                lambda: (q := iris_quality()) is not None and q.dataset_drift,
                240,
                "iris-prod drifting",
            )
            await pilot.pause(3)
        await fresh(pilot)
        await settle(pilot)
        save(app, "overview")
        await pilot.press("enter")
        await on(pilot, EndpointDetailScreen)
        await settle(pilot, 1.0)
        await fresh(pilot)
        save(app, "endpoint_detail")
        await pilot.press("escape", "colon", *"drift iris-prod", "enter")
        await on(pilot, QualityScreen)
        await settle(pilot, 1.0)
        await pilot.press("down", "down")
        await settle(pilot)
        save(app, "quality")
        await pilot.press("escape", "escape", "2")
        await on(pilot, AlertsScreen)
        await settle(pilot)
        screen = app.screen
        # An open alert to acknowledge and then silence (a flapping endpoint also leaves resolved ones).
        target = next((a.id for a in getattr(screen, "alerts", []) if a.state != "resolved"), None)
        if isinstance(screen, AlertsScreen) and target is not None and not app.read_only:
            screen.table.focus()
            screen.table.move_cursor(row=screen.table.get_row_index(str(target)))
            await pilot.press("a")
            if await on(pilot, AckDialog):
                await pilot.press(*"looking into it", "enter")
                await on(pilot, AlertsScreen)
                await settle(pilot)
            screen.table.focus()
            screen.table.move_cursor(row=screen.table.get_row_index(str(target)))
            await pilot.press("s")
            if await on(pilot, SilenceDialog, timeout=10):
                await pilot.pause(0.5)
                save(app, "silence_dialog")
                await pilot.press("1")
                await on(pilot, AlertsScreen)
                await settle(pilot)
            screen.reload()
            await settle(pilot)
        save(app, "alerts")
        if isinstance(app.screen, AlertsScreen):
            app.screen.table.focus()
        await pilot.press("enter")
        await on(pilot, AlertTimelineScreen)
        await settle(pilot)
        save(app, "alert_timeline")
        await pilot.press("escape", "3")
        await on(pilot, ModelsScreen)
        await settle(pilot, 1.0)
        await wait_until(
            pilot,
            lambda: bool(getattr(app.screen, "models", None)) or getattr(app.screen, "error", None),
            30,
            "the registry",
        )
        await pilot.press("down")
        await settle(pilot, 1.0)
        await pilot.press("tab", "space", "down", "space", "c")
        await settle(pilot)
        save(app, "models")
        if not app.read_only:
            await pilot.press("up", "p")  # v3, the newest: v2 already serves production
            await on(pilot, ChangeDialog)
            await settle(pilot, 1.0)
            await pilot.press(*"screenshot: compare before promoting")
            await pilot.pause(0.3)
            save(app, "promote_dialog")
            await pilot.press("escape")
            await settle(pilot)
        await pilot.press("4")
        await on(pilot, AuditScreen)
        await settle(pilot)
        save(app, "audit")
        if app.settings.pipelines:
            await pilot.press("5")
            await on(pilot, PipelinesScreen)
            await wait_until(
                pilot,
                lambda: all(p.runs for p in app.snapshot.pipelines),
                60,
                "the pipelines' runs",
            )
            await settle(pilot)
            save(app, "pipelines")
            app.screen.focus_main()
            await pilot.press("enter")
            await on(pilot, PipelineRunsScreen)
            await settle(pilot, 1.0)
            save(app, "pipeline_runs")
            await pilot.press("escape", "4")
            await on(pilot, AuditScreen)
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        save(app, "help")
        await pilot.press("escape", "1", "colon", *"endpoint ")
        await pilot.pause(0.5)
        save(app, "command_bar")

    app = make_app()
    async with app.run_test(size=NARROW) as pilot:
        await wait_until(pilot, lambda: app.snapshot is not None, 30, "a snapshot")
        await pilot.pause(3)
        await fresh(pilot)
        await settle(pilot)
        save(app, "overview_80x24")
    return taken


def to_png(paths: list[Path]) -> None:
    converter = shutil.which("rsvg-convert")
    if not converter:
        print(
            "screenshots: rsvg-convert not found; SVGs only (apt-get install librsvg2-bin)", file=sys.stderr
        )
        return
    for path in paths:
        subprocess.run([converter, "-o", str(path.with_suffix(".png")), str(path)], check=False)


async def shoot_history(root: Path, out: Path) -> Path:
    """The endpoint screen's week view over a week of stored history (a daily cycle, one slow
    afternoon), with the latency detector's expected band: sample data, as the demo has no week."""
    import dataclasses
    import math

    from mlops_console.core.store import Rollup
    from mlops_console.tui.messages import SnapshotReceived
    from mlops_console.tui.screens.endpoint_detail import EndpointDetailScreen
    from tests import sample

    app = sample.make_app(root)
    now = int(sample.T0 // 60)
    rows = []
    for minute in range(now - 7 * 1440, now):
        day = math.sin(2 * math.pi * (minute % 1440) / 1440)
        p95 = 0.012 + 0.003 * day + (0.03 if now - 3 * 1440 - 120 <= minute < now - 3 * 1440 else 0.0)
        rps = 6.0 + 4.0 * day
        rows.append(
            Rollup(
                "iris-prod",
                minute,
                12,
                0,
                p95 / 2,
                p95,
                p95 * 1.3,
                rps,
                0.001,
                12,
                p95 / 2,
                p95 / 4,
                p95,
                rps * 60,
            )
        )
    app.backend.store.write_rollups(rows)
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        snap = sample.snapshot()
        bands = (("latency", 0.0, 0.022), ("throughput", 1.2, 12.5))
        endpoints = [
            dataclasses.replace(e, bands=bands) if e.name == "iris-prod" else e for e in snap.endpoints
        ]
        app.post_message(SnapshotReceived(dataclasses.replace(snap, endpoints=endpoints)))
        await pilot.press("colon", *"endpoint iris-prod", "enter")
        await settle(pilot)
        assert isinstance(app.screen, EndpointDetailScreen)
        await pilot.press("h", "h")
        await settle(pilot, 1.0)
        path = out / "endpoint_history.svg"
        app.save_screenshot(str(path))
    print(f"screenshots: {path}")
    return path


def web_shot(config: Path, first_endpoint: str, out: Path) -> Path:
    """`mlops-console web` on `config`, opened in headless chromium: `web.png` once the overview shows."""
    import secrets as tokens

    import httpx

    from tests._browser import TerminalFrames, browser, offline_page
    from tests._serve_helpers import free_port, poll_until

    port, token = free_port(), tokens.token_urlsafe(12)
    cmd = [sys.executable, "-m", "mlops_console", "--config", str(config), "web", "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--token", token], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def listening() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 403
        except httpx.HTTPError:
            return False

    try:
        poll_until(listening, 60, "mlops-console web")
        with browser() as chromium:
            page = offline_page(chromium, 1600, 960)
            frames = TerminalFrames(page)
            page.goto(f"{url}/?token={token}")
            frames.wait_for(page, first_endpoint, 90)
            page.wait_for_timeout(8000)  # a few probes: figures instead of dashes
            path = out / "web.png"
            page.screenshot(path=str(path))
            return path
    finally:
        proc.terminate()
        proc.wait(20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--demo", action="store_true", help="start the demo environment and shoot it")
    source.add_argument("--config", type=Path, help="shoot the console running on this config")
    source.add_argument("--sample", action="store_true", help="deterministic sample data, no servers")
    parser.add_argument("--root", type=Path, help="demo root (default: a temporary directory)")
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--png", action="store_true", help="also write PNGs (rsvg-convert)")
    parser.add_argument(
        "--web", action="store_true", help="also shoot `mlops-console web` in chromium (web.png)"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    from mlops_console.config import load_settings
    from mlops_console.tui.app import MlopsConsole

    env = None
    if args.sample:
        from tests import sample

        work = Path(tempfile.mkdtemp(prefix="mlops-shots-"))
        counter = iter(range(100))
        taken = asyncio.run(shoot(lambda: sample.make_app(work / str(next(counter))), args.out, first_wait=1))
        taken.append(asyncio.run(shoot_history(work / "history", args.out)))
    else:
        if args.demo:
            from mlops_console.demo.environment import DemoEnvironment
            from mlops_console.demo.registry import build_registry

            root = args.root or Path(tempfile.mkdtemp(prefix="mlops-demo-"))
            print(f"screenshots: building the demo in {root} ...", file=sys.stderr)
            build_registry(root)
            env = DemoEnvironment(root)
            env.start()
            config = env.write_config(root / "demo.toml")
        else:
            config = args.config
        settings = load_settings(config)
        try:
            taken = asyncio.run(shoot(lambda: MlopsConsole(settings, demo=env), args.out, env=env))
            if args.web and settings.endpoints:
                shot = web_shot(config, settings.endpoints[0].name, args.out)
                print(f"screenshots: {shot}", file=sys.stderr)
        finally:
            if env is not None:
                env.stop()
    if args.png:
        to_png(taken)
    return 0


if __name__ == "__main__":
    sys.exit(main())
