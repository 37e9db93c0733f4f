"""Run the scoring app until SIGTERM/SIGINT (or until a watched parent process is gone)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from aiohttp import web

PARENT_POLL_SECONDS = 1.0


async def _watch_parent(pid: int, stop: asyncio.Event) -> None:
    """A demo server restarted by a short-lived redeploy command has no live parent to tie its
    life to, so it follows the demo's owner process instead."""
    import psutil

    try:
        owner = psutil.Process(pid)
    except psutil.NoSuchProcess:
        stop.set()
        return
    while not stop.is_set():
        if not owner.is_running() or owner.status() == psutil.STATUS_ZOMBIE:
            print(f"serve: owner process {pid} is gone, shutting down", file=sys.stderr)
            stop.set()
            return
        await asyncio.sleep(PARENT_POLL_SECONDS)


async def serve_forever(
    app: web.Application, host: str, port: int, *, exit_with_pid: int | None = None
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        print(f"serve: listening on http://{host}:{port}", file=sys.stderr, flush=True)
        watcher = asyncio.create_task(_watch_parent(exit_with_pid, stop)) if exit_with_pid else None
        await stop.wait()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    finally:
        await runner.cleanup()
    return 0
