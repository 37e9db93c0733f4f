"""What every command shares: exit codes, `CommandError`, argument types, loading the settings.

Command modules import this, never `mlops_console.cli` (which imports them to build the parser).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from mlops_console.config import Settings, load_settings
from mlops_console.core.limits import check_id, check_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_STORE = 3
"""The store cannot be used (missing, locked, corrupt, not writable, another schema version): unlike 1,
the command did not get to decide anything, and `status` keeps 1 for "an endpoint is down"."""
EXIT_UNKNOWN = 4
"""`status`: nothing is down, but the health of some endpoint is unknown (nothing answered for it: no
probe result, or Prometheus unreachable where health comes from `up{}`), so "all well" cannot be said."""


class CommandError(Exception):
    """A failure to report in one line with exit code 1 (e.g. registry unreachable, refused promote)."""


# -- argument types: a bad value is a usage error (exit 2) with the reason, never a traceback --------------
def positive_int(what: str) -> Callable[[str], int]:
    """An argparse type: an integer from 1 to SQLite's largest (ids, limits)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise argparse.ArgumentTypeError(f"expected a positive integer, got {shown!r}") from None
        try:
            return check_id(value, what)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def positive_duration(example: str) -> Callable[[str], float]:
    """An argparse type: a duration above zero (`90s`, `15m`, `12h`, `7d`), in seconds."""

    def parse(text: str) -> float:
        from mlops_console.config import parse_duration

        try:
            seconds = parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if seconds <= 0:
            raise argparse.ArgumentTypeError(
                f"expected a duration above 0 such as {example}, got {text[:40]!r}"
            )
        return seconds

    return parse


def bounded_text(text: str) -> str:
    """An argparse type: free text of at most MAX_TEXT characters (notes, reasons, names)."""
    try:
        return check_text(text, "the value") or ""
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def config_option(parser: argparse.ArgumentParser) -> None:
    # Accepted after the command too; SUPPRESS keeps the global `--config` when this one is absent.
    parser.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="config file")


def settings_from(args: argparse.Namespace) -> Settings:
    """Load the config named by `--config` (or the default location) with installed adapters known.

    `${VAR}` references in notification URLs and deploy hooks are resolved where they are used, so
    commands that neither page nor deploy run without those secrets (`Settings.require_paging`).
    """
    from mlops_console.core.adapters import adapter_names

    return load_settings(getattr(args, "config", None), known_adapters=adapter_names(), require_env=False)
