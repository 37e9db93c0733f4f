"""A deploy hook restarts the endpoint it redeploys: nobody is paged for that restart (`deploy.quiet`).

A maintenance window over the endpoint runs while the hook and its verification do, recorded and
audited with the name of whoever moved the alias. A verified deploy ends it a few probes later, once
the engine saw the endpoint answer again; a deploy that fails ends it at once, and what still fires
pages then, beside the deploy's own `deploy_not_converged` page.

Real parts: a sqlite-backed MLflow registry, the real engine probing a loopback endpoint, a real store,
apprise pages to a loopback sink. The verification probe is where the restart happens: it breaks the
endpoint and waits until the engine has recorded the outage, as a slow restart would."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, load_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.deploy_fanout import settle_after_deploy
from mlops_console.core.engine import Engine
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from tests._changes import promote, rollback
from tests._loopback import FaultServer, Sink, async_wait_for
from tests.test_engine_faults import PAYLOAD


def write_settings(tmp_path: Path, uri: str, url: str, sink: Sink, *, quiet: bool = True) -> Settings:
    path = tmp_path / "console.toml"
    path.write_text(
        f'[registry]\ntracking_uri = "{uri}"\ntimeout = 10\n'
        f'[store]\npath = "{tmp_path / "console.db"}"\n'
        f'[[endpoints]]\nname = "iris-prod"\nurl = "{url}"\nmodel = "iris"\nalias = "production"\n'
        f"interval = 0.2\ntimeout = 0.5\npayload = {json.dumps(json.dumps(PAYLOAD))}\n"
        f'deploy = {{ command = "true", verify_timeout = 2, quiet = {str(quiet).lower()} }}\n'
        f'[[notifications]]\nurl = "{sink.url}"\n'
    )
    return load_settings(path)


class Restart:
    """The verification probe: the endpoint is down while it restarts (until the engine has recorded
    that), then serves `version`, or never comes back (`comes_back=False`)."""

    def __init__(self, server: FaultServer, store: Store, version: str, *, comes_back: bool = True) -> None:
        self.server, self.store, self.version, self.comes_back = server, store, version, comes_back
        self.held_during: list[bool] = []

    async def __call__(self, _endpoint: Any) -> ProbeResult:
        if not self.held_during:
            self.server.faults.mode = "error"
            await async_wait_for(lambda: self.store.list_alerts("firing"), what="the restart's down alert")
            self.held_during.append(self.store.in_maintenance("iris-prod") is not None)
            if self.comes_back:
                self.server.version = self.version
                self.server.faults.mode = "ok"
        if not self.comes_back:
            return ProbeResult(ok=False, error="connection refused")
        return ProbeResult(ok=True, served_version=self.version)


@pytest.fixture
async def running(mlflow_registry: Any, tmp_path: Path, server: FaultServer, sink: Sink):  # type: ignore[no-untyped-def]
    server.version = "2"
    settings = write_settings(tmp_path, mlflow_registry.tracking_uri, server.url, sink)
    store = Store(settings.store.path)
    engine = Engine(settings, store)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    await async_wait_for(lambda: engine.endpoints["iris-prod"].served_version == "2", what="v2 served")
    try:
        yield settings, store, RegistryClient(settings.registry)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until_over(store: Store, window_id: int) -> None:
    window = store.maintenance_window(window_id)
    await async_wait_for(lambda: time.time() > window.ends_at + 1.0, timeout=30, what="the hold to end")


async def test_a_verified_promote_holds_the_restarts_page_and_pages_nothing(
    running: Any, server: FaultServer, sink: Sink
) -> None:
    settings, store, registry = running
    restart = Restart(server, store, "3")
    result = await asyncio.to_thread(
        promote, settings, store, registry, "iris", 3, actor="alice", probe=restart
    )
    assert result.ok, result.message
    assert restart.held_during == [True]
    [window] = store.maintenance_windows()
    assert (window.endpoints, window.created_by, window.reason, window.ended_by) == (
        "iris-prod",
        "alice",
        "redeploying iris v3 (promote)",
        "alice",
    )
    # Ended a few probes after the verification, not at once: the engine must see the endpoint again.
    settle = settle_after_deploy(settings.endpoints[0])
    [deploy] = store.list_audit(action="deploy")
    assert deploy.at <= window.ends_at - settle + 1.0 and window.ends_at >= deploy.at
    [alert] = store.list_alerts()
    await async_wait_for(lambda: store.get_alert(alert.id).state == "resolved", what="the outage to resolve")
    await until_over(store, window.id)
    assert sink.titles() == []
    assert "maintenance" in [e.kind for e in store.events(alert.id)]
    assert [r.action for r in store.list_audit() if r.action.startswith("maintenance")] == [
        "maintenance_end",
        "maintenance",
    ]


async def test_a_verified_rollback_holds_the_restarts_page_too(
    running: Any, server: FaultServer, sink: Sink
) -> None:
    settings, store, registry = running
    assert (
        await asyncio.to_thread(promote, settings, store, registry, "iris", 3, actor="a", deploy=False)
    ).ok
    restart = Restart(server, store, "2")
    result = await asyncio.to_thread(rollback, settings, store, registry, "iris", actor="bob", probe=restart)
    assert result.ok, result.message
    assert restart.held_during == [True]
    [window] = store.maintenance_windows()
    assert (window.created_by, window.reason) == ("bob", "redeploying iris v2 (rollback)")
    [alert] = store.list_alerts()
    await async_wait_for(lambda: store.get_alert(alert.id).state == "resolved", what="the outage to resolve")
    await until_over(store, window.id)
    assert sink.titles() == []


async def test_a_deploy_that_fails_ends_the_hold_at_once_and_the_outage_pages(
    running: Any, server: FaultServer, sink: Sink
) -> None:
    settings, store, registry = running
    restart = Restart(server, store, "3", comes_back=False)
    result = await asyncio.to_thread(
        promote, settings, store, registry, "iris", 3, actor="alice", probe=restart
    )
    assert not result.ok and result.changed
    [window] = store.maintenance_windows()
    [deploy] = store.list_audit(action="deploy")
    assert window.ends_at <= deploy.at and window.ended_by == "alice"
    await async_wait_for(lambda: len(sink.titles()) >= 2, what="the outage's and the deploy's pages")
    assert sorted(sink.titles()) == [
        "[FIRING] iris-prod: deploy did not converge",
        "[FIRING] iris-prod: endpoint down",
    ]


async def test_quiet_false_holds_nothing(
    mlflow_registry: Any, tmp_path: Path, server: FaultServer, sink: Sink
) -> None:
    settings = write_settings(tmp_path, mlflow_registry.tracking_uri, server.url, sink, quiet=False)
    store = Store(settings.store.path)
    registry = RegistryClient(settings.registry)

    async def healthy(_endpoint: Any) -> ProbeResult:
        return ProbeResult(ok=True, served_version="3")

    result = await asyncio.to_thread(
        promote, settings, store, registry, "iris", 3, actor="alice", probe=healthy
    )
    assert result.ok and store.maintenance_windows() == []
