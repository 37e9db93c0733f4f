"""Metric-gated automatic rollback: a watched rule firing soon after a promote rolls the alias back.

For `watch` seconds after a promote of a `[[auto_rollback]]` model and alias (by anyone: the console,
the CLI, a pipeline; the shared audit trail says so), a firing alert of one of the configured rules on
an endpoint that serves the promoted version rolls the alias back through the same guarded path as
`mlops-console rollback` (READY check, expected-current guard, deploy hook, verification), as the actor
`auto-rollback`, and pages about it.

Never twice: the decision about a promote is one row keyed by the promote (`store.auto_rollback`),
claimed while holding the engine lease and before the registry is asked. An engine that stops after
the claim leaves it `deciding`; whoever holds the lease next finishes that same decision from what
the registry and the audit trail say, rather than taking a second one.

Which promotes are watched and what triggers a rollback: `watch`; deciding and acting: `runner`.
"""

from mlops_console.core.auto_rollback.runner import ACTOR, RETRY_AFTER, AutoRollback, page
from mlops_console.core.auto_rollback.watch import (
    Window,
    cancel,
    recent_decisions,
    trigger,
    window_for,
    windows,
)

__all__ = [
    "ACTOR",
    "RETRY_AFTER",
    "AutoRollback",
    "Window",
    "cancel",
    "page",
    "recent_decisions",
    "trigger",
    "window_for",
    "windows",
]
