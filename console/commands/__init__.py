"""The subcommands of `mlops-console`: one module per group, each with a `register(subparsers)`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def registrations() -> list[Register]:
    """Every command group's `register`, in the order `--help` lists them."""
    from mlops_console.commands import (
        alerts,
        changes,
        demo,
        drift,
        maintenance,
        models,
        pipelines,
        replay,
        report,
        status,
        watch,
        web,
    )

    return [
        watch.register,
        status.register,
        alerts.register,
        maintenance.register,
        models.register,
        pipelines.register,
        changes.register,
        report.register,
        demo.register,
        drift.register,
        replay.register,
        web.register,
    ]
