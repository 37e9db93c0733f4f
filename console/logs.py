"""Logging set-up shared by `watch` (stderr, for journald) and the console (a file under the data dir)."""

from __future__ import annotations

import logging
import os
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from mlops_console.core.text import printable

NOISY = ("apprise", "aiohttp", "urllib3", "mlflow", "alembic", "httpx")


def configure(handler: logging.Handler, level: str | int = logging.INFO) -> None:
    """Route every log record to `handler` alone, with chatty libraries held at WARNING."""
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    # apprise's warnings quote what the notifier logs once per attempt, but unredacted (an ntfy topic,
    # a host): keep them out of the log. apprise still captures them (at WARNING) for the delivery
    # result, which the notifier logs and stores scrubbed.
    apprise_log = logging.getLogger("apprise")
    apprise_log.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in apprise_log.handlers):
        apprise_log.addHandler(logging.NullHandler())


class TextLines(logging.Formatter):
    """One line per record; control characters and escape sequences in the message (an endpoint's error
    body, a model name, a `--note`) are shown escaped, so they neither forge lines nor drive a terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = printable(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message

    def formatException(self, ei: Any) -> str:
        return "\n".join(printable(line) for line in super().formatException(ei).splitlines())

    def formatStack(self, stack_info: str) -> str:
        return "\n".join(printable(line) for line in super().formatStack(stack_info).splitlines())


class PrivateFileHandler(RotatingFileHandler):
    """A rotating log file readable by its owner alone (mode 0600, like the store): it names endpoints,
    alerts and who acknowledged them. A file left 0644 by an older version is tightened."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)


def log_to_file(path: Path, level: str | int = logging.INFO) -> None:
    """Send every log record to `path` (rotated at 5 MB, two old files kept)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = PrivateFileHandler(path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    handler.setFormatter(TextLines("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    configure(handler, level)
