"""`promote`, `rollback` and `audit`: changing what an alias points to, and the record of every change."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mlops_console.commands.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    bounded_text,
    positive_int,
    settings_from,
)
from mlops_console.commands.models import open_store, registry_client
from mlops_console.commands.output import fmt_metric, iso, json_error, local, print_json, table
from mlops_console.config import ConfigError, Settings
from mlops_console.core.actor import os_user
from mlops_console.core.registry import RegistryError
from mlops_console.core.text import printable

if TYPE_CHECKING:
    from mlops_console.core.promotion import ChangePlan, ChangeResult, Promoter
    from mlops_console.core.store import AuditEntry


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `--config` after the subcommand must not clobber the global one when absent.
    common.add_argument("--config", default=argparse.SUPPRESS, help="config file")

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
    rollback.add_argument(
        "--expect-current", metavar="N", help="refuse unless the alias points to version N now"
    )
    rollback.add_argument("--no-deploy", action="store_true", help="move the alias, run no deploy hook")
    rollback.add_argument(
        "--cancel-auto",
        action="store_true",
        help="move nothing: cancel the pending automatic rollback of the model's last promote",
    )
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
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (see the README's --json fields)"
    )


# -- promote / rollback ------------------------------------------------------------------------------------
def cmd_promote(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    promoter = _promoter(settings)
    try:
        plan = promoter.plan_promote(
            args.name, args.version, alias=args.alias, stage=args.stage, expect_current=args.expect_current
        )
    except RegistryError as exc:
        return _report(args, _planning_failed(promoter, args, "promote", exc, to_version=args.version))
    return _confirm_and_apply(args, settings, promoter, plan)


def cmd_rollback(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.cancel_auto:
        return _cancel_auto(args, settings)
    promoter = _promoter(settings)
    try:
        plan = promoter.plan_rollback(
            args.name, alias=args.alias, stage=args.stage, expect_current=args.expect_current
        )
    except RegistryError as exc:
        return _report(args, _planning_failed(promoter, args, "rollback", exc))
    return _confirm_and_apply(args, settings, promoter, plan)


def _cancel_auto(args: argparse.Namespace, settings: Settings) -> int:
    """`rollback NAME --cancel-auto`: the promote under watch stays, whatever fires; audited."""
    from mlops_console.core.auto_rollback import cancel

    if args.stage:
        raise CommandError("--cancel-auto: automatic rollback watches aliases, not stages")
    if not any(c.model == args.name for c in settings.auto_rollback):
        raise CommandError(f"no [[auto_rollback]] is configured for {args.name}")
    actor = args.by or os_user()
    window, decision, audit_id = cancel(
        settings, open_store(settings), args.name, alias=args.alias, actor=actor, reason=args.reason
    )
    if audit_id is None or window is None:
        if window is None:
            message = f"no promote of {args.name} is under watch: nothing to cancel"
        else:
            message = (
                f"the automatic rollback of {args.name} v{window.promote.to_version} was already decided: "
                + (f"{decision.state} by {decision.actor}" if decision else "by someone else")
            )
        if args.json:
            print_json(json_error(message, EXIT_FAILED))
        raise CommandError(message)
    message = (
        f"cancelled the automatic rollback of {args.name} {window.alias} v{window.promote.to_version} "
        f"(watched until {local(window.until)}); audit #{audit_id}"
    )
    if args.json:
        print_json(
            {
                "ok": True,
                "action": "cancel_auto_rollback",
                "model": args.name,
                "alias": window.alias,
                "version": window.promote.to_version,
                "promote_audit_id": window.promote.id,
                "audit_id": audit_id,
                "actor": actor,
                "reason": args.reason,
            }
        )
    else:
        print(printable(message))
    return EXIT_OK


def _promoter(settings: Settings) -> Promoter:
    from mlops_console.core.promotion import Promoter

    return Promoter(settings, open_store(settings), registry_client(settings))


def _planning_failed(
    promoter: Promoter,
    args: argparse.Namespace,
    action: str,
    exc: RegistryError,
    to_version: str | None = None,
) -> ChangeResult:
    """The registry could not even be read: the attempt goes into the audit trail."""
    return promoter.record_failure(
        action,
        args.name,
        actor=args.by or os_user(),
        exc=exc,
        alias=args.alias,
        stage=args.stage,
        to_version=to_version,
        reason=args.reason,
    )


def _confirm_and_apply(
    args: argparse.Namespace, settings: Settings, promoter: Promoter, plan: ChangePlan
) -> int:
    from mlops_console.core.promotion import missing_hook_env

    actor = args.by or os_user()
    if plan.ok and not plan.noop and not args.no_deploy:
        missing = missing_hook_env(settings, plan)
        if missing:
            raise ConfigError(settings.source, missing)
    if plan.ok and not plan.noop and not args.yes:
        if args.json or not sys.stdin.isatty():
            why = "--json answers no prompt" if args.json else "stdin is not a terminal"
            message = f"refusing to {plan.action} without confirmation: {why} (pass --yes)"
            if args.json:
                print_json(json_error(message, EXIT_USAGE))
            print(f"mlops-console: {message}", file=sys.stderr)
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
    result = promoter.apply(
        plan,
        actor=actor,
        reason=args.reason,
        deploy=not args.no_deploy,
        on_progress=_progress,
        recheck=not args.yes,
    )
    return _report(args, result, plan.action)


def _report(args: argparse.Namespace, result: ChangeResult, action: str | None = None) -> int:
    """The outcome on stdout (a line, or the JSON document), warnings and failures on stderr."""
    for warning in result.warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    if result.ok:
        if args.json:
            print_json(change_json(result, actor=args.by or os_user(), reason=args.reason))
        else:
            print(printable(result.message))
        return EXIT_OK
    # A plan that could not even be made failed outright; one the registry or a guard refused says so.
    message = (
        f"{action} {'refused' if result.refused else 'failed'}: {result.message}"
        if action
        else result.message
    )
    if not args.json:
        raise CommandError(message)
    print_json(change_json(result, actor=args.by or os_user(), reason=args.reason))
    print(f"mlops-console: {printable(message)}", file=sys.stderr)
    return EXIT_FAILED


def change_json(result: ChangeResult, *, actor: str, reason: str | None) -> dict[str, object]:
    """`promote --json` and `rollback --json`: stable fields a pipeline can rely on.

    `verified` is true when every redeployed endpoint was verified to serve the new version, false when
    one was not, and null when nothing was redeployed.
    """
    return {
        "ok": result.ok,
        "action": result.action,
        "model": result.model,
        "alias": result.target.alias,
        "stage": result.target.stage,
        "from_version": result.from_version,
        "to_version": result.to_version,
        "changed": result.changed,
        "refused": result.refused,
        "verified": all(d.ok for d in result.deploys) if result.deploys else None,
        "message": result.message,
        "audit_id": result.audit_id,
        "actor": actor,
        "reason": reason,
        "deploys": [d.as_dict() for d in result.deploys],
        "alert_ids": list(result.alert_ids),
        "warnings": list(result.warnings),
    }


def _progress(message: str) -> None:
    print(f"  {printable(message)}", file=sys.stderr, flush=True)


def describe_plan(plan: ChangePlan, deploy: bool = True) -> str:
    """The change side by side: current vs new version, their key metrics, what gets redeployed."""
    cur, new = plan.current, plan.new
    assert new is not None, "only a plan that may go ahead is described"
    p = printable
    lines = [
        f"{plan.action} {p(plan.model)}: {p(plan.target.label)}  v{p(plan.current_version or '-')} -> "
        f"v{p(plan.new_version)}",
        "",
    ]
    rows = [
        ["version", f"v{cur.version}" if cur else "-", f"v{new.version}"],
        ["status", cur.status if cur else "-", new.status],
        ["created", local(cur.created_at) if cur else "-", local(new.created_at)],
    ]
    rows += [[key, fmt_metric(a), fmt_metric(b)] for key, a, b in plan.metric_rows()]
    lines.append(table(["", "CURRENT", "NEW"], rows))
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
    rows = open_store(settings, read_only=True).list_audit(model=args.model, limit=args.limit)
    if args.json:
        print_json([{**row.as_dict(), "at": iso(row.at)} for row in rows])
        return EXIT_OK
    if not rows:
        print("no audit entries")
        return EXIT_OK
    cells = [
        [
            local(r.at),
            r.actor,
            r.action,
            r.model or "-",
            r.alias or "-",
            f"{_v(r.from_version)} -> {_v(r.to_version)}" if r.to_version or r.from_version else "-",
            r.endpoint or "-",
            r.result,
            _audit_note(r),
        ]
        for r in rows
    ]
    print(
        table(
            ["WHEN", "WHO", "ACTION", "MODEL", "ALIAS", "CHANGE", "ENDPOINT", "RESULT", "REASON / DETAIL"],
            cells,
        )
    )
    return EXIT_OK


def _v(version: str | None) -> str:
    return f"v{version}" if version else "-"


def _audit_note(row: AuditEntry) -> str:
    detail = row.detail or {}
    parts = [row.reason] if row.reason else []
    if row.result != "ok":
        note = detail.get("error") or "; ".join(detail.get("problems", [])) or detail.get("summary")
        if note:
            parts.append(str(note))
    elif row.action == "deploy" and detail.get("summary"):
        parts.append(detail["summary"])
    text = " | ".join(parts)
    return text if len(text) <= 100 else text[:99] + "…"
