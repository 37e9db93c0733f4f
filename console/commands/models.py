"""`models`, `models show`: the model registry from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_console.commands.common import EXIT_OK, CommandError, positive_int, settings_from
from mlops_console.commands.output import fmt_metric, iso, local, print_json, table
from mlops_console.config import ConfigError, Settings

if TYPE_CHECKING:
    from mlops_console.core.registry import RegistryClient
    from mlops_console.core.store import Store

T = TypeVar("T")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `--config` after the subcommand must not clobber the global one when absent.
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file")

    models = sub.add_parser("models", parents=[common], help="registered models, their aliases and versions")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(func=cmd_models)
    models_sub = models.add_subparsers(title="models commands", metavar="COMMAND")
    show = models_sub.add_parser(
        "show", parents=[common], help="versions of one model with status and metrics"
    )
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.add_argument(
        "--limit", type=positive_int("--limit"), default=50, help="newest N versions (default 50)"
    )
    show.set_defaults(func=cmd_models_show)


def registry_client(settings: Settings) -> RegistryClient:
    from mlops_console.core.registry import RegistryClient

    if not settings.registry.tracking_uri:
        raise ConfigError(settings.source, ["registry.tracking_uri: required for registry commands"])
    # Credentials are `${VAR}` references resolved when used: a registry command needs them set.
    missing = settings.missing_env("registry.")
    if missing:
        raise ConfigError(settings.source, missing)
    return RegistryClient(settings.registry)


def open_store(settings: Settings, *, read_only: bool = False) -> Store:
    from mlops_console.core.store import Store

    return Store(settings.store.path, read_only=read_only, lock_timeout=settings.store.lock_timeout)


def registry_call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    from mlops_console.core.registry import RegistryError

    try:
        return fn(*args, **kwargs)
    except RegistryError as exc:
        raise CommandError(str(exc)) from None


# -- models ----------------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    models = registry_call(registry_client(settings).list_models)
    if args.json:
        print_json(
            [
                {
                    "name": m.name,
                    "aliases": m.aliases,
                    "latest_versions": m.latest_versions,
                    "description": m.description,
                    "tags": m.tags,
                    "updated_at": iso(m.updated_at),
                }
                for m in models
            ]
        )
        return EXIT_OK
    if not models:
        print("no registered models")
        return EXIT_OK
    rows = [
        [
            m.name,
            ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())) or "-",
            f"v{m.latest_versions[0]}" if m.latest_versions else "-",
            local(m.updated_at),
        ]
        for m in models
    ]
    print(table(["MODEL", "ALIASES", "LATEST", "UPDATED"], rows))
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from mlops_console.core.registry import RegistryError, RegistryNotFound

    settings = settings_from(args)
    registry = registry_client(settings)
    try:
        page = registry.versions(args.name, max_results=args.limit)
    except RegistryNotFound:
        raise CommandError(f"model {args.name!r} does not exist") from None
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print_json(
            [
                {
                    "model": v.model,
                    "version": v.version,
                    "status": v.status,
                    "aliases": v.aliases,
                    "stage": v.stage,
                    "tags": v.tags,
                    "created_at": iso(v.created_at),
                    "run_id": v.run_id,
                    "source": v.source,
                    "metrics": v.metrics,
                }
                for v in page
            ]
        )
        return EXIT_OK
    keys = sorted({key for v in page for key in v.metrics})[:6]
    rows = [
        [
            f"v{v.version}",
            v.status,
            ", ".join(v.aliases) or "-",
            v.stage or "-",
            local(v.created_at),
            *(fmt_metric(v.metrics.get(k)) for k in keys),
            (v.run_id or "-")[:12],
        ]
        for v in page
    ]
    print(table(["VERSION", "STATUS", "ALIASES", "STAGE", "CREATED", *keys, "RUN"], rows))
    if page.next_page_token:
        print(f"(newest {len(page)} shown; --limit N for more)")
    return EXIT_OK
