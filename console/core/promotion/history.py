"""The alias history: the stack of versions an alias pointed to before, so a rollback can go back.

The console keeps it twice: in a registered-model tag (`mlops_console.history.<alias>`, so a fresh
store can still roll back) and implicitly in the audit trail. Rolling back pops the stack, so a
second rollback goes one further.
"""

from __future__ import annotations

import json
from typing import Literal

from mlops_console.core.promotion.target import Target
from mlops_console.core.store import Store

HISTORY_LIMIT = 50
Source = Literal["tag", "audit", "none", "diverged"]


def alias_history(
    store: Store | None,
    model: str,
    target: Target,
    current: str | None,
    model_tags: dict[str, str],
) -> tuple[list[str], Source]:
    """The stack of previous versions (oldest first) and where it came from: "tag", "audit", "none" or
    "diverged" (the console has history, but the alias was moved by someone else since)."""
    sources: list[tuple[Source, list[str], str | None]] = []
    tag = parse_tag(model_tags.get(target.tag))
    if tag is not None:
        sources.append(("tag", *tag))
    if store is not None:
        audit = audit_history(store, model, target.key)
        if audit is not None:
            sources.append(("audit", *audit))
    for name, stack, recorded_current in sources:
        if recorded_current == current:
            return stack, name
    return [], "diverged" if any(stack for _n, stack, _c in sources) else "none"


def parse_tag(value: str | None) -> tuple[list[str], str | None] | None:
    if not value:
        return None
    try:
        data = json.loads(value)
        return [str(v) for v in data.get("previous", [])], (
            str(data["current"]) if data.get("current") else None
        )
    except (ValueError, TypeError, AttributeError):
        return None  # hand-edited or foreign tag: ignore rather than roll back to garbage


def audit_history(store: Store, model: str, target_key: str) -> tuple[list[str], str | None] | None:
    """Replay the successful promotes/rollbacks of this alias: (stack, version it was last set to)."""
    changes = store.alias_changes(model, target_key)
    if not changes:
        return None
    stack: list[str] = []
    current: str | None = None
    for change in changes:
        if change.action == "promote":
            stack = push(
                stack if current == change.from_version else [], change.from_version, change.to_version
            )
        elif stack:
            stack = stack[:-1]
        current = change.to_version
    return stack, current


def push(stack: list[str], current: str | None, new: str | None) -> list[str]:
    if current is None or current == new:
        return list(stack)
    return [*stack, current][-HISTORY_LIMIT:]
