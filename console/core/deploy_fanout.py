"""Redeploying every endpoint that serves a moved alias, at once, and recording each outcome.

Runs the deploy hooks concurrently (`deploy.deploy_endpoint`) with `asyncio.run` from the calling
(worker) thread, writes one `deploy` audit row per endpoint, and raises a `deploy_not_converged`
alert for each endpoint that did not come back serving the new version.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_console.core.alerts import open_external_alert
from mlops_console.core.deploy import DeployOutcome, Probe, Progress, deploy_endpoint
from mlops_console.core.store import Store

if TYPE_CHECKING:
    from mlops_console.config import Settings

T = TypeVar("T")


def redeploy(
    settings: Settings,
    store: Store,
    *,
    endpoints: list[str],
    model: str,
    alias: str,
    audit_alias: str,
    version: str,
    from_version: str | None,
    action: str,
    actor: str,
    reason: str | None,
    progress: Progress,
    probe: Probe | None = None,
) -> tuple[list[DeployOutcome], list[int]]:
    """Redeploy and verify `endpoints` (names); returns their outcomes and the ids of alerts raised."""
    targets = [settings.endpoint(name) for name in endpoints]

    async def run_all() -> list[DeployOutcome]:
        return list(
            await asyncio.gather(
                *(
                    deploy_endpoint(
                        endpoint,
                        model=model,
                        alias=alias,
                        version=version,
                        extra={"action": action, "actor": actor, "from_version": from_version or ""},
                        probe=probe,
                        progress=progress,
                    )
                    for endpoint in targets
                )
            )
        )

    outcomes = _run_coroutine(run_all)
    alert_ids: list[int] = []
    for outcome in outcomes:
        store.add_audit(
            actor=actor,
            action="deploy",
            result="ok" if outcome.ok else "failed",
            model=model,
            alias=audit_alias,
            from_version=from_version,
            to_version=version,
            reason=reason,
            endpoint=outcome.endpoint,
            detail=outcome.as_dict(),
        )
        if not outcome.ok:
            summary = (
                f"deploy of {model} v{version} to {outcome.endpoint} did not converge"
                f" ({outcome.verify.error if outcome.verify else outcome.hook.error})"
            )
            alert_ids.append(
                open_external_alert(
                    store,
                    settings,
                    rule="deploy_not_converged",
                    endpoint=outcome.endpoint,
                    model=model,
                    version=version,
                    severity="critical",
                    summary=summary,
                )
            )
    return outcomes, alert_ids


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run`, also when a careless caller already runs a loop in this thread (it then blocks it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
