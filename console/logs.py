"""Logging set-up shared by `watch` (stderr, for journald) and the console (a file under the data dir)."""

from __future__ import annotations

import logging

NOISY = ("apprise", "aiohttp", "urllib3", "mlflow", "alembic", "httpx")


def configure(handler: logging.Handler, level: str | int = logging.INFO) -> None:
    """Route every log record to `handler` alone, with chatty libraries held at WARNING."""
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
