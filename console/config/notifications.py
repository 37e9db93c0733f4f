"""`[[notifications]]` (where pages go) and `[notify]` (how often, how persistently)."""

from __future__ import annotations

import fnmatch

from pydantic import ConfigDict, Field

from mlops_console.config.values import SEVERITY_RANK, Duration, Section, Severity
from mlops_console.core import secrets


class NotificationSettings(Section):
    # Only `url` names the key in a config file; `template` is the attribute.
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    template: str = Field(alias="url", min_length=1)
    """Any apprise URL (`json://`, `slack://`, `mailto://`, `pagerduty://`, `ntfy://`...), as written:
    `${VAR}` references unexpanded. This (redacted) is what is stored, logged and shown."""
    min_severity: Severity = "info"
    endpoints: list[str] = ["*"]
    """Glob patterns of endpoint names routed to this channel."""
    after: Duration = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    """An escalation channel: it hears only about alerts still firing, unacknowledged and not silenced
    this long after they fired (then their reminders and resolve too). 0: it hears every page at once."""

    @property
    def url(self) -> str:
        """The URL to deliver to, `${VAR}` expanded now; `secrets.MissingVariable` when one is unset."""
        return secrets.expand(self.template)

    @property
    def escalates(self) -> bool:
        return self.after > 0

    def routes(self, endpoint: str, severity: str) -> bool:
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity] and any(
            fnmatch.fnmatchcase(endpoint, pattern) for pattern in self.endpoints
        )


class NotifySettings(Section):
    renotify_after: Duration = 1800.0
    """Remind about a firing alert nobody acknowledged after this long (0 disables)."""
    max_attempts: int = Field(default=8, ge=1)
    """Delivery attempts per notification before it is given up (recorded as dead)."""
    timeout: Duration = 10.0
    """Seconds one delivery attempt may take."""
