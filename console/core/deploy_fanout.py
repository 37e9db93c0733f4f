"""Redeploying every endpoint that serves a moved alias, at once, and recording each outcome.

Runs the deploy hooks concurrently (`deploy.deploy_endpoint`) with `asyncio.run` from the calling
(worker) thread, writes one `deploy` audit row per endpoint, and raises a `deploy_not_converged`
alert for each endpoint that did not come back serving the new version. While a hook restarts an
endpoint, a maintenance window over it holds its pages (`deploy.quiet`): the restart was decided by
the person who moved the alias, and a deploy that fails pages for itself.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_console.core.alerts import open_external_alert
from mlops_console.core.deploy import DeployOutcome, Probe, Progress, deploy_endpoint
from mlops_console.core.store import Store
from mlops_console.core.store.maintenance import exact_glob

if TYPE_CHECKING:
    from mlops_console.config import Settings
    from mlops_console.config.endpoints import EndpointSettings

T = TypeVar("T")
log = logging.getLogger(__name__)


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

    holds = _hold_pages(store, targets, model=model, version=version, action=action, actor=actor)
    for endpoint, window_id in holds:
        progress(f"pages for {endpoint.name} held until its deploy is verified (maintenance #{window_id})")
    outcomes: list[DeployOutcome] = []
    try:
        outcomes = _run_coroutine(run_all)
    finally:
        _release_holds(store, holds, outcomes, actor=actor, progress=progress)
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


def _hold_pages(
    store: Store, targets: list[EndpointSettings], *, model: str, version: str, action: str, actor: str
) -> list[tuple[EndpointSettings, int]]:
    """A maintenance window over each endpoint about to restart (`deploy.quiet`), lasting at most as long
    as its hook and verification may; the deploy goes ahead even when the store cannot record one."""
    holds = []
    for endpoint in targets:
        if endpoint.deploy is None or not endpoint.deploy.quiet:
            continue
        seconds = endpoint.deploy.timeout + endpoint.deploy.verify_timeout + settle_after_deploy(endpoint)
        reason = f"redeploying {model} v{version} ({action})"
        try:
            window = store.start_maintenance(exact_glob(endpoint.name), seconds, by=actor, reason=reason)
        except (sqlite3.Error, ValueError) as exc:
            log.warning("no maintenance window over %s during its deploy: %s", endpoint.name, exc)
            continue
        holds.append((endpoint, window.id))
    return holds


def _release_holds(
    store: Store,
    holds: list[tuple[EndpointSettings, int]],
    outcomes: list[DeployOutcome],
    *,
    actor: str,
    progress: Progress,
) -> None:
    """End each hold: a little after a verified deploy (the engine must see the endpoint answer again
    and resolve what fired during the restart), at once after a failed one (the page is due)."""
    verified = {o.endpoint for o in outcomes if o.ok}
    for endpoint, window_id in holds:
        ok = endpoint.name in verified
        try:
            store.end_maintenance(
                window_id,
                by=actor,
                reason="deploy verified" if ok else "deploy not verified",
                after=settle_after_deploy(endpoint) if ok else 0.0,
            )
        except (sqlite3.Error, KeyError, ValueError) as exc:
            progress(f"warning: maintenance window #{window_id} over {endpoint.name} not ended: {exc}")


def settle_after_deploy(endpoint: EndpointSettings) -> float:
    """How long pages stay held after a verified deploy: three probes, at least 10 s."""
    return max(3 * endpoint.interval, 10.0)


def _run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run`, also when a careless caller already runs a loop in this thread (it then blocks it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()
