"""`models`, `models show`, `promote`, `rollback`, `audit`: the model registry from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from mlops_console.cli import CommandError, bounded_text, positive_int, settings_from
from mlops_console.config import ConfigError, Settings
from mlops_console.core.actor import os_user
from mlops_console.core.limits import json_safe
from mlops_console.core.text import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
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

    promote = sub.add_parser("promote", parents=[common], help="move an alias (or stage) to a model version")
    promote.add_argument("name")
    promote.add_argument("version")
    _target_args(promote)
    promote.add_argument(
        "--expect-current",
        metavar="N",
        help="refuse unless the alias points to version N now ('none' when unset)",
    )
    promote.add_argument("--no-deploy", action="store_true", help="move the alias, run no deploy hook")
    promote.set_defaults(func=cmd_promote)

    rollback = sub.add_parser("rollback", parents=[common], help="move an alias back to its previous version")
    rollback.add_argument("name")
    _target_args(rollback)
    rollback.add_argument("--expect-current", metavar="N", help=argparse.SUPPRESS)
    rollback.add_argument("--no-deploy", action="store_true", help="move the alias, run no deploy hook")
    rollback.set_defaults(func=cmd_rollback)

    audit = sub.add_parser("audit", parents=[common], help="who promoted, rolled back, deployed what, when")
    audit.add_argument("--model", help="only this model")
    audit.add_argument("--limit", type=positive_int("--limit"), default=50)
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(func=cmd_audit)


def _target_args(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--alias", help="alias to move (default: [registry] default_alias or per-model alias)"
    )
    target.add_argument("--stage", help="legacy stage instead of an alias (Staging, Production)")
    parser.add_argument(
        "--reason", type=bounded_text, help="why (recorded in the audit trail and MLflow tags)"
    )
    parser.add_argument(
        "--by", type=bounded_text, default=None, help="who is doing it (default: the OS user)"
    )
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


# -- plumbing --------------------------------------------------------------------------------------------
def _registry(settings: Settings) -> Any:
    from mlops_console.core.registry import RegistryClient

    if not settings.registry.tracking_uri:
        raise ConfigError(settings.source, ["registry.tracking_uri: required for registry commands"])
    return RegistryClient(settings.registry)


def _store(settings: Settings, *, read_only: bool = False) -> Any:
    from mlops_console.core.store import Store

    return Store(settings.store.path, read_only=read_only, lock_timeout=settings.store.lock_timeout)


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def _local(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    # Cells hold registry names, versions, tags, actors and reasons: shown escaped.
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def _fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _print_json(data: Any) -> None:
    print(json.dumps(json_safe(data), indent=2, default=str))


def _registry_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from mlops_console.core.registry import RegistryError

    try:
        return fn(*args, **kwargs)
    except RegistryError as exc:
        raise CommandError(str(exc)) from None


# -- models ----------------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    models = _registry_call(_registry(settings).list_models)
    if args.json:
        _print_json(
            [
                {
                    "name": m.name,
                    "aliases": m.aliases,
                    "latest_versions": m.latest_versions,
                    "description": m.description,
                    "tags": m.tags,
                    "updated_at": _iso(m.updated_at),
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
            _local(m.updated_at),
        ]
        for m in models
    ]
    print(_table(["MODEL", "ALIASES", "LATEST", "UPDATED"], rows))
    return EXIT_OK


def cmd_models_show(args: argparse.Namespace) -> int:
    from mlops_console.core.registry import RegistryError, RegistryNotFound

    settings = settings_from(args)
    registry = _registry(settings)
    try:
        page = registry.versions(args.name, max_results=args.limit)
    except RegistryNotFound:
        raise CommandError(f"model {args.name!r} does not exist") from None
    except RegistryError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        _print_json(
            [
                {
                    "model": v.model,
                    "version": v.version,
                    "status": v.status,
                    "aliases": v.aliases,
                    "stage": v.stage,
                    "tags": v.tags,
                    "created_at": _iso(v.created_at),
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
            _local(v.created_at),
            *(_fmt_metric(v.metrics.get(k)) for k in keys),
            (v.run_id or "-")[:12],
        ]
        for v in page
    ]
    print(_table(["VERSION", "STATUS", "ALIASES", "STAGE", "CREATED", *keys, "RUN"], rows))
    if page.next_page_token:
        print(f"(newest {len(page)} shown; --limit N for more)")
    return EXIT_OK


# -- promote / rollback ------------------------------------------------------------------------------------
def cmd_promote(args: argparse.Namespace) -> int:
    from mlops_console.core import promotion

    settings = settings_from(args)
    registry, store = _registry(settings), _store(settings)
    plan = _registry_call(
        promotion.plan_promote,
        settings,
        registry,
        args.name,
        args.version,
        alias=args.alias,
        stage=args.stage,
        expect_current=args.expect_current,
        store=store,
    )
    return _confirm_and_apply(args, settings, store, registry, plan)


def cmd_rollback(args: argparse.Namespace) -> int:
    from mlops_console.core import promotion

    settings = settings_from(args)
    registry, store = _registry(settings), _store(settings)
    plan = _registry_call(
        promotion.plan_rollback,
        settings,
        store,
        registry,
        args.name,
        alias=args.alias,
        stage=args.stage,
        expect_current=args.expect_current,
    )
    return _confirm_and_apply(args, settings, store, registry, plan)


def _confirm_and_apply(
    args: argparse.Namespace, settings: Settings, store: Any, registry: Any, plan: Any
) -> int:
    from mlops_console.core import promotion

    actor = args.by or os_user()
    if plan.ok and not plan.noop and not args.no_deploy:
        missing = promotion.missing_hook_env(settings, plan)
        if missing:
            raise ConfigError(settings.source, missing)
    if plan.ok and not plan.noop and not args.yes:
        if not sys.stdin.isatty():
            print(
                f"mlops-console: refusing to {plan.action} without confirmation: stdin is not a terminal "
                f"(pass --yes)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        print(describe_plan(plan, deploy=not args.no_deploy))
        try:
            question = f"{plan.action} {printable(plan.model)} to v{printable(plan.new_version)}? [y/N] "
            answer = input(question).strip().lower()
        except EOFError:
            answer = ""
        if answer not in ("y", "yes"):
            print("cancelled; nothing changed")
            return EXIT_FAILED
    # With a prompt in between, the registry is checked again so a concurrent change is not overwritten.
    result = promotion.apply_plan(
        settings,
        store,
        registry,
        plan,
        actor=actor,
        reason=args.reason,
        deploy=not args.no_deploy,
        on_progress=_progress,
        recheck=not args.yes,
    )
    if result.ok:
        print(printable(result.message))
        for warning in result.warnings:
            print(f"warning: {printable(warning)}", file=sys.stderr)
        return EXIT_OK
    for warning in result.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    verb = "refused" if result.refused else "failed"
    raise CommandError(f"{plan.action} {verb}: {result.message}")


def _progress(message: str) -> None:
    print(f"  {printable(message)}", file=sys.stderr, flush=True)


def describe_plan(plan: Any, deploy: bool = True) -> str:
    """The change side by side: current vs new version, their key metrics, what gets redeployed."""
    cur, new = plan.current, plan.new
    p = printable
    lines = [
        f"{plan.action} {p(plan.model)}: {p(plan.target.label)}  v{p(plan.current_version or '-')} -> "
        f"v{p(plan.new_version)}",
        "",
    ]
    rows = [
        ["version", f"v{cur.version}" if cur else "-", f"v{new.version}"],
        ["status", cur.status if cur else "-", new.status],
        ["created", _local(cur.created_at) if cur else "-", _local(new.created_at)],
    ]
    rows += [[key, _fmt_metric(a), _fmt_metric(b)] for key, a, b in plan.metric_rows()]
    lines.append(_table(["", "CURRENT", "NEW"], rows))
    lines.append("")
    if plan.endpoints:
        what = "will be redeployed and verified" if deploy else "will NOT be redeployed (--no-deploy)"
        lines.append(f"endpoints: {p(', '.join(plan.endpoints))} {what}")
    if plan.not_redeployed:
        lines.append(f"no deploy hook (keep serving the old version): {p(', '.join(plan.not_redeployed))}")
    return "\n".join(lines)


# -- audit -----------------------------------------------------------------------------------------------
def cmd_audit(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    rows = _store(settings, read_only=True).list_audit(model=args.model, limit=args.limit)
    if args.json:
        _print_json([{**row, "at": _iso(row["at"])} for row in rows])
        return EXIT_OK
    if not rows:
        print("no audit entries")
        return EXIT_OK
    table = [
        [
            _local(r["at"]),
            r["actor"],
            r["action"],
            r["model"] or "-",
            r["alias"] or "-",
            f"{_v(r['from_version'])} -> {_v(r['to_version'])}"
            if r["to_version"] or r["from_version"]
            else "-",
            r["endpoint"] or "-",
            r["result"],
            _audit_note(r),
        ]
        for r in rows
    ]
    print(
        _table(
            ["WHEN", "WHO", "ACTION", "MODEL", "ALIAS", "CHANGE", "ENDPOINT", "RESULT", "REASON / DETAIL"],
            table,
        )
    )
    return EXIT_OK


def _v(version: str | None) -> str:
    return f"v{version}" if version else "-"


def _audit_note(row: dict[str, Any]) -> str:
    detail = row.get("detail") or {}
    parts = [row["reason"]] if row.get("reason") else []
    if row["result"] != "ok":
        note = detail.get("error") or "; ".join(detail.get("problems", [])) or detail.get("summary")
        if note:
            parts.append(str(note))
    elif row["action"] == "deploy" and detail.get("summary"):
        parts.append(detail["summary"])
    text = " | ".join(parts)
    return text if len(text) <= 100 else text[:99] + "…"
