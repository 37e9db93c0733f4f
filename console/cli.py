"""`mlops-console`: argument parsing and dispatch. Each command module registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from mlops_console.config import ConfigError, Settings, load_settings
from mlops_console.core.limits import check_id, check_text
from mlops_console.core.store import StoreError
from mlops_console.core.text import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_STORE = 3
"""The store cannot be used (missing, locked, corrupt, not writable, another schema version): unlike 1,
the command did not get to decide anything, and `status` keeps 1 for "an endpoint is down"."""


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


def bounded_text(text: str) -> str:
    """An argparse type: free text of at most MAX_TEXT characters (notes, reasons, names)."""
    try:
        return check_text(text, "the value") or ""
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def settings_from(args: argparse.Namespace) -> Settings:
    """Load the config named by `--config` (or the default location) with installed adapters known.

    `${VAR}` references in notification URLs and deploy hooks are resolved where they are used, so
    commands that neither page nor deploy run without those secrets (`Settings.require_paging`).
    """
    from mlops_console.core.adapters import adapter_names

    return load_settings(getattr(args, "config", None), known_adapters=adapter_names(), require_env=False)


def _command_modules() -> list[Callable[[argparse._SubParsersAction], None]]:
    from mlops_console import commands_alerts, commands_demo, commands_models, commands_replay, commands_watch

    return [
        commands_watch.register,
        commands_alerts.register,
        commands_models.register,
        commands_demo.register,
        commands_replay.register,
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops-console",
        description="Terminal operations console for model-serving endpoints (no command: the console).",
    )
    parser.add_argument(
        "--config", type=Path, help="config file (default: $MLOPS_CONSOLE_CONFIG or user config dir)"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="console without promote/rollback/ack/silence"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.set_defaults(func=_run_tui)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in _command_modules():
        register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlops-console")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _run_tui(args: argparse.Namespace) -> int:
    from mlops_console.tui.app import run_console

    return run_console(settings_from(args), read_only=args.read_only)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or EXIT_OK)
    except ConfigError as exc:
        for line in exc.lines():
            print(printable(line), file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"mlops-console: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except StoreError as exc:
        print(f"mlops-console: {printable(exc)}", file=sys.stderr)
        return EXIT_STORE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
