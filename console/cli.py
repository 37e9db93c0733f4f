"""`mlops-console`: argument parsing and dispatch. Each command module registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlops_console.commands import registrations
from mlops_console.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STORE,
    EXIT_USAGE,
    CommandError,
    settings_from,
)
from mlops_console.config import ConfigError
from mlops_console.core.store import StoreError
from mlops_console.core.text import printable


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
    for register in registrations():
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
        lines = [printable(line) for line in exc.lines()]
        return _fail(args, lines, EXIT_USAGE)
    except CommandError as exc:
        return _fail(args, [f"mlops-console: {printable(exc)}"], EXIT_FAILED)
    except StoreError as exc:
        return _fail(args, [f"mlops-console: {printable(exc)}"], EXIT_STORE)
    except KeyboardInterrupt:
        return 130


def _fail(args: argparse.Namespace, lines: list[str], code: int) -> int:
    """The reason on stderr; with `--json`, also a JSON document on stdout, so a pipeline that parses
    stdout always gets one (argument errors, which argparse reports before this, are the exception)."""
    for line in lines:
        print(line, file=sys.stderr)
    if getattr(args, "json", False):
        from mlops_console.commands.output import json_error, print_json

        print_json(json_error("\n".join(lines).removeprefix("mlops-console: "), code))
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
