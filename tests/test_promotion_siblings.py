"""Every guard on promote, asserted on rollback too, against a real sqlite-backed MLflow registry.

A rollback restores an earlier version of the alias: it must refuse a version that is not READY,
a state that changed since the plan was shown, missing deploy secrets, and report a redeploy that does
not converge, exactly like a promote. Each test leaves the alias where a refusal must leave it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.promotion import Promoter
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from tests._changes import promote, rollback


def make_settings(tmp_path: Path, uri: str, endpoints: list[dict[str, Any]] | None = None) -> Settings:
    return parse_settings(
        {
            "registry": {"tracking_uri": uri, "timeout": 10},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": endpoints or [],
        }
    )


@pytest.fixture
def env(mlflow_registry, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri)
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def healthy(version: str | None = None):  # type: ignore[no-untyped-def]
    async def probe(_endpoint: Any) -> ProbeResult:
        return ProbeResult(ok=True, served_version=version)

    return probe


async def never_healthy(_endpoint: Any) -> ProbeResult:
    return ProbeResult(ok=False, error="connection refused")


def results(store: Store, action: str) -> list[str]:
    return [r.result for r in store.list_audit(action=action)]


# -- READY ------------------------------------------------------------------------------------------------
def test_rollback_refuses_a_previous_version_that_is_not_ready(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 3, actor="a").ok  # production 2 -> 3
    mlflow_registry.set_status("iris", 2, "FAILED_REGISTRATION")
    plan = Promoter(settings, store, registry).plan_rollback("iris")
    assert plan.problems == ["the previous version iris v2 is FAILED_REGISTRATION, not READY"]
    result = rollback(settings, store, registry, "iris", actor="b")
    assert result.refused and not result.changed
    assert result.message == "the previous version iris v2 is FAILED_REGISTRATION, not READY"
    assert registry.alias_version("iris", "production") == "3"
    assert results(store, "rollback") == ["refused"]


def test_promote_and_rollback_both_refuse_pending_registration(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 1, actor="a").ok  # 2 -> 1, history [2]
    mlflow_registry.set_status("iris", 2, "PENDING_REGISTRATION")
    promoted = promote(settings, store, registry, "iris", 2, actor="a")
    rolled = rollback(settings, store, registry, "iris", actor="a")
    assert promoted.refused and "iris v2 is PENDING_REGISTRATION, not READY" in promoted.message
    assert rolled.refused and "iris v2 is PENDING_REGISTRATION, not READY" in rolled.message
    assert registry.alias_version("iris", "production") == "1"
    mlflow_registry.set_status("iris", 2, "READY")
    assert rollback(settings, store, registry, "iris", actor="a").ok
    assert registry.alias_version("iris", "production") == "2"


# -- expected current ---------------------------------------------------------------------------------------
def test_rollback_expect_current_refuses_a_mismatch(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 3, actor="a").ok
    wrong = rollback(settings, store, registry, "iris", actor="b", expect_current=2)
    assert wrong.refused
    assert "alias production of iris changed since you looked: it is v3, you expected v2" in wrong.message
    assert registry.alias_version("iris", "production") == "3"
    unset = rollback(settings, store, registry, "iris", actor="b", expect_current="none")
    assert unset.refused and "it is v3, you expected unset" in unset.message
    right = rollback(settings, store, registry, "iris", actor="b", expect_current="v3")
    assert right.ok and registry.alias_version("iris", "production") == "2"


def test_stale_rollback_plan_is_refused_at_apply(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    promoter = Promoter(settings, store, registry)
    assert promote(settings, store, registry, "iris", 3, actor="a").ok  # 2 -> 3
    plan = promoter.plan_rollback("iris")  # what engineer A sees: v3 back to v2
    assert plan.ok and (plan.current_version, plan.new_version) == ("3", "2")
    assert promote(settings, store, registry, "iris", 1, actor="bob").ok  # B moves it first: 3 -> 1
    result = promoter.apply(plan, actor="alice")
    assert result.refused and not result.changed
    assert "changed since you looked: it is v1, you expected v3" in result.message
    assert registry.alias_version("iris", "production") == "1"
    assert results(store, "rollback") == ["refused"]


def test_stale_promote_plan_is_refused_at_apply(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    promoter = Promoter(settings, store, registry)
    plan = promoter.plan_promote("iris", 3)
    assert promote(settings, store, registry, "iris", 1, actor="bob").ok
    result = promoter.apply(plan, actor="alice")
    assert result.refused and "it is v1, you expected v2" in result.message
    assert registry.alias_version("iris", "production") == "1"


# -- deploy secrets (the console refuses before the alias moves) -------------------------------------------
def test_rollback_with_history_is_refused_when_a_deploy_secret_is_missing(
    mlflow_registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-value")
    endpoint = {
        "name": "iris-prod",
        "url": "http://127.0.0.1:9",
        "model": "iris",
        "deploy": {"command": "true ${DEPLOY_TOKEN}", "verify_timeout": 2},
    }
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, [endpoint])
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    assert promote(settings, store, registry, "iris", 3, actor="a", probe=healthy()).ok
    monkeypatch.delenv("DEPLOY_TOKEN")
    for change in (
        lambda: promote(settings, store, registry, "iris", 1, actor="a", probe=healthy()),
        lambda: rollback(settings, store, registry, "iris", actor="a", probe=healthy()),
    ):
        result = change()
        assert result.refused and not result.changed
        assert "${DEPLOY_TOKEN}" in result.message and "endpoints[0].deploy" in result.message
    assert registry.alias_version("iris", "production") == "3"
    assert results(store, "rollback") == ["refused"]


# -- deploy verification ------------------------------------------------------------------------------
def deploy_env(mlflow_registry, tmp_path: Path, deploy: dict[str, Any]):  # type: ignore[no-untyped-def]
    endpoints = [{"name": "iris-prod", "url": "http://127.0.0.1:9", "model": "iris", "deploy": deploy}]
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, endpoints)
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def test_rollback_whose_redeploy_does_not_converge_raises_an_alert(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": "true", "verify_timeout": 1}
    )
    assert promote(settings, store, registry, "iris", 3, actor="a", probe=healthy()).ok
    result = rollback(settings, store, registry, "iris", actor="b", probe=never_healthy)
    assert not result.ok and result.changed, "the alias did move; the redeploy is what failed"
    assert "deploy of iris v2 to iris-prod did not converge within 1s: connection refused" in result.message
    assert registry.alias_version("iris", "production") == "2"
    [alert] = store.list_alerts()
    assert (alert.rule, alert.endpoint, alert.severity, alert.model) == (
        "deploy_not_converged",
        "iris-prod",
        "critical",
        "iris",
    )
    assert alert.summary.startswith("deploy of iris v2 to iris-prod did not converge")
    assert result.alert_ids == [alert.id] and f"#{alert.id}" in result.message
    [deploy_row] = [r for r in store.list_audit(action="deploy") if r.to_version == "2"]
    assert deploy_row.result == "failed"
    assert store.list_audit(action="rollback")[0].detail["deploys"][0]["ok"] is False


def test_a_second_deploy_that_does_not_converge_joins_the_open_alert(mlflow_registry, tmp_path: Path) -> None:
    """The promote's deploy failed and the endpoint is still broken when the rollback's deploy fails
    too: one incident, one open alert (two would leave one firing after the endpoint recovers)."""
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": "true", "verify_timeout": 1}
    )
    first = promote(settings, store, registry, "iris", 3, actor="a", probe=never_healthy)
    second = rollback(settings, store, registry, "iris", actor="b", probe=never_healthy)
    assert not first.ok and not second.ok and second.changed
    [alert] = store.list_alerts()
    assert first.alert_ids == second.alert_ids == [alert.id]
    assert f"(alert raised: #{alert.id})" in second.message
    assert alert.summary.startswith("deploy of iris v3 to iris-prod did not converge")
    assert [r.result for r in store.list_audit(action="deploy")] == ["failed", "failed"]


def test_rollback_whose_endpoint_still_serves_the_old_version_fails(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": "true", "verify_timeout": 1}
    )
    assert promote(settings, store, registry, "iris", 3, actor="a", probe=healthy("3")).ok
    stale = rollback(settings, store, registry, "iris", actor="b", probe=healthy("3"))
    assert not stale.ok and "still serves v3" in stale.message


def test_rollback_whose_hook_fails_alerts_but_keeps_the_rollback(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(mlflow_registry, tmp_path, {"command": "echo bad >&2; exit 4"})
    assert promote(settings, store, registry, "iris", 3, actor="a", probe=healthy(), deploy=False).ok
    result = rollback(settings, store, registry, "iris", actor="b", probe=healthy())
    assert not result.ok and result.changed and "hook exited 4: bad" in result.message
    assert registry.alias_version("iris", "production") == "2"
    assert results(store, "rollback") == ["ok"]
    [alert] = store.list_alerts()
    assert alert.rule == "deploy_not_converged" and "iris v2" in alert.summary


def test_rollback_that_converges_is_ok_and_verified(mlflow_registry, tmp_path: Path) -> None:
    settings, store, registry = deploy_env(
        mlflow_registry, tmp_path, {"command": "true", "verify_timeout": 2}
    )
    assert promote(settings, store, registry, "iris", 3, actor="a", probe=healthy("3")).ok
    result = rollback(settings, store, registry, "iris", actor="b", probe=healthy("2"))
    assert result.ok, result.message
    assert "rolled back iris: alias production v3 -> v2" in result.message
    assert [d.ok for d in result.deploys] == [True] and store.list_alerts() == []
