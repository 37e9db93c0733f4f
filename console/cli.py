"""`mlops-console`: argument parsing and dispatch. Each command module registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from console.config import ConfigError, Settings, load_settings
from console.core.text import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CommandError(Exception):
    """A failure to report in one line with exit code 1 (e.g. registry unreachable, refused promote)."""


def settings_from(args: argparse.Namespace) -> Settings:
    """Load the config named by `--config` (or the default location) with installed adapters known.

    `${VAR}` references in notification URLs and deploy hooks are resolved where they are used, so
    commands that neither page nor deploy run without those secrets (`Settings.require_paging`).
    """
    from console.core.adapters import adapter_names

    return load_settings(getattr(args, "config", None), known_adapters=adapter_names(), require_env=False)


def _command_modules() -> list[Callable[[argparse._SubParsersAction], None]]:
    from console import commands_alerts, commands_demo, commands_models, commands_watch

    return [
        commands_watch.register,
        commands_alerts.register,
        commands_models.register,
        commands_demo.register,
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
    parser.set_defaults(func=_run_tui)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for register in _command_modules():
        register(sub)
    return parser


def _run_tui(args: argparse.Namespace) -> int:
    from console.tui.app import run_console

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
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
