"""Who watches the watcher: a URL called every interval while the engine is healthy.

A dead-man's switch (healthchecks.io, Cronitor, a PagerDuty heartbeat) expects the call and pages when
it stops coming: when the engine stalls or fails (the calls are skipped), or the process is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mlops_console.core import secrets
from mlops_console.core.adapters import describe_exception, new_http_session, timed_request

log = logging.getLogger("mlops_console.heartbeat")


async def heartbeat_loop(
    template: str,
    every: float,
    timeout: float,
    healthy: Callable[[], bool],
    on_call: Callable[[str], None] | None = None,
) -> None:
    """Call `template` (`${VAR}` expanded at each call) every `every` seconds while `healthy()`.

    `on_call` hears `sent` or `failed` for each call made. Log lines show the URL redacted and say only
    when the outcome changes, not at every call.
    """
    shown = secrets.redact_url(template)
    last: str | None = None
    async with new_http_session() as http:
        while True:
            if healthy():
                outcome, problem = "sent", ""
                try:
                    url = secrets.expand(template)
                    answer = await timed_request(http, "GET", url, timeout)
                    if answer.status >= 400:
                        outcome, problem = "failed", f"HTTP {answer.status}"
                except secrets.MissingVariable as exc:
                    outcome, problem = "failed", str(exc)
                except Exception as exc:
                    outcome, problem = "failed", describe_exception(exc)
                if on_call is not None:
                    on_call(outcome)
                if outcome != last:
                    if outcome == "sent":
                        log.info("heartbeat to %s: sent", shown, extra={"event": "heartbeat"})
                    else:
                        log.warning(
                            "heartbeat to %s failed: %s",
                            shown,
                            secrets.scrub(problem, secrets.env_values(template)),
                            extra={"event": "heartbeat_failed"},
                        )
                last = outcome
            elif last != "skipped":
                log.warning("engine not healthy: heartbeat withheld", extra={"event": "heartbeat_withheld"})
                last = "skipped"
            await asyncio.sleep(every)
