"""The promoter's results, audit rows, MLflow tags and progress asserted whole, promote beside rollback.

A real sqlite-backed MLflow registry, one per module, restored to the template before each test (MLflow
builds its stores for a tracking URI once; a mutation run runs this file once per mutant). Registry
faults are real too: a trigger in the registry's database refuses the write a test wants to fail. The
one fault sqlite cannot give, a registry that refuses a write for lack of rights, comes from a client
that raises the error the real client makes of an HTTP 403.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.promotion import ChangeResult, Promoter
from mlops_console.core.promotion.target import Target
from mlops_console.core.registry import RegistryClient, RegistryNotPermitted, RegistryUnavailable
from mlops_console.core.store import Store
from tests._changes import promote, rollback

PRODUCTION = Target(alias="production")


def make_settings(tmp_path: Path, uri: str, endpoints: list[dict[str, Any]] | None = None) -> Settings:
    return parse_settings(
        {
            "registry": {"tracking_uri": uri, "timeout": 30},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": endpoints or [],
        },
        require_env=False,
    )


@pytest.fixture
def env(mlflow_registry_restored: Any, tmp_path: Path) -> tuple[Settings, Store, RegistryClient]:
    settings = make_settings(tmp_path, mlflow_registry_restored.tracking_uri)
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def refuse_writes(registry: Any, table: str) -> None:
    """The registry's database refuses every new or changed row of `table` from now on."""
    with sqlite3.connect(registry.db_path) as db:
        for event in ("INSERT", "UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER refuse_{event}_{table} BEFORE {event} ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'read-only for this test'); END"
            )


def row_of(store: Store, audit_id: int | None) -> dict[str, Any]:
    [row] = [r for r in store.list_audit(limit=1000) if r.id == audit_id]
    out = row.as_dict()
    del out["id"], out["at"]
    return out


def promoted_tags(registry: RegistryClient, version: int) -> dict[str, str]:
    return {
        k: v
        for k, v in registry.version("iris", version, with_metrics=False).tags.items()
        if k.startswith("promoted_")
    }


def healthy(version: str | None = None) -> Any:
    async def probe(_endpoint: Any) -> ProbeResult:
        return ProbeResult(ok=True, served_version=version)

    return probe


async def never_healthy(_endpoint: Any) -> ProbeResult:
    return ProbeResult(ok=False, error="connection refused")


def test_promote_then_rollback_results_audit_rows_tags_and_progress(env: Any) -> None:
    settings, store, registry = env
    said: list[str] = []
    up = promote(
        settings, store, registry, "iris", 3, actor="alice", reason="better f1", on_progress=said.append
    )
    assert up == ChangeResult(
        True,
        "promote",
        "iris",
        PRODUCTION,
        "2",
        "3",
        "promoted iris: alias production v2 -> v3",
        changed=True,
        audit_id=up.audit_id,
    )
    assert said == ["moving alias production of iris: v2 -> v3"]
    row = row_of(store, up.audit_id)
    seconds = row["detail"]["registry_seconds"]
    assert isinstance(seconds, float) and 0 <= seconds < 60 and seconds == round(seconds, 3)
    assert row == {
        "actor": "alice",
        "action": "promote",
        "model": "iris",
        "alias": "production",
        "from_version": "2",
        "to_version": "3",
        "reason": "better f1",
        "result": "ok",
        "detail": {"endpoints": [], "history": ["2"], "registry_seconds": seconds, "warnings": []},
        "alert_id": None,
        "endpoint": None,
    }
    tags = promoted_tags(registry, 3)
    at = tags["promoted_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", at) and datetime.fromisoformat(at)
    assert tags == {
        "promoted_by": "alice",
        "promoted_at": at,
        "promoted_action": "promote",
        "promoted_target": "alias production",
        "promoted_from": "2",
        "promoted_reason": "better f1",
    }
    history = json.loads(registry.get_model("iris").tags["mlops_console.history.production"])
    assert history == {"current": "3", "previous": ["2"], "by": "alice", "at": at}

    said.clear()
    down = rollback(settings, store, registry, "iris", actor="bob", on_progress=said.append)
    assert down == ChangeResult(
        True,
        "rollback",
        "iris",
        PRODUCTION,
        "3",
        "2",
        "rolled back iris: alias production v3 -> v2",
        changed=True,
        audit_id=down.audit_id,
    )
    assert said == ["moving alias production of iris: v3 -> v2"]
    row = row_of(store, down.audit_id)
    assert (row["action"], row["actor"], row["from_version"], row["to_version"], row["reason"]) == (
        "rollback",
        "bob",
        "3",
        "2",
        None,
    )
    assert row["result"] == "ok" and row["detail"]["history"] == [] and row["detail"]["warnings"] == []
    tags = promoted_tags(registry, 2)
    assert tags == {
        "promoted_by": "bob",
        "promoted_at": tags["promoted_at"],
        "promoted_action": "rollback",
        "promoted_target": "alias production",
        "promoted_from": "3",
        "promoted_reason": "",
    }
    history = json.loads(registry.get_model("iris").tags["mlops_console.history.production"])
    assert history == {"current": "2", "previous": [], "by": "bob", "at": tags["promoted_at"]}


def test_refused_promote_and_rollback_write_one_audit_row_and_nothing_else(env: Any) -> None:
    settings, store, registry = env
    before = promoted_tags(registry, 3), registry.get_model("iris").tags
    said: list[str] = []
    up = promote(
        settings, store, registry, "iris", 3, actor="a", reason="r", expect_current=1, on_progress=said.append
    )
    assert up == ChangeResult(
        False,
        "promote",
        "iris",
        PRODUCTION,
        "2",
        "3",
        up.message,
        refused=True,
        audit_id=up.audit_id,
    )
    assert "you expected v1" in up.message and said == []
    assert row_of(store, up.audit_id) == {
        "actor": "a",
        "action": "promote",
        "model": "iris",
        "alias": "production",
        "from_version": "2",
        "to_version": "3",
        "reason": "r",
        "result": "refused",
        "detail": {"problems": [up.message]},
        "alert_id": None,
        "endpoint": None,
    }
    down = rollback(settings, store, registry, "iris", actor="b", reason="why", on_progress=said.append)
    assert (down.ok, down.refused, down.changed, down.from_version, down.to_version) == (
        False,
        True,
        False,
        "2",
        None,
    )
    assert row_of(store, down.audit_id) == {
        "actor": "b",
        "action": "rollback",
        "model": "iris",
        "alias": "production",
        "from_version": "2",
        "to_version": None,
        "reason": "why",
        "result": "refused",
        "detail": {"problems": [down.message]},
        "alert_id": None,
        "endpoint": None,
    }
    assert said == [] and len(store.list_audit()) == 2
    assert registry.alias_version("iris", "production") == "2"
    assert (promoted_tags(registry, 3), registry.get_model("iris").tags) == before


def test_several_problems_are_joined_in_the_message(env: Any, mlflow_registry_restored: Any) -> None:
    settings, store, registry = env
    mlflow_registry_restored.set_status("iris", 3, "PENDING_REGISTRATION")
    result = promote(settings, store, registry, "iris", 3, actor="a", expect_current=1)
    problems = row_of(store, result.audit_id)["detail"]["problems"]
    assert len(problems) == 2 and result.message == "; ".join(problems)


def test_promote_to_the_current_version_changes_nothing(env: Any) -> None:
    settings, store, registry = env
    said: list[str] = []
    result = promote(settings, store, registry, "iris", 2, actor="a", on_progress=said.append)
    assert result == ChangeResult(
        True,
        "promote",
        "iris",
        PRODUCTION,
        "2",
        "2",
        "alias production of iris already points to v2; nothing to do",
    )
    assert said == [] and store.list_audit() == [] and promoted_tags(registry, 2) == {}


def test_an_unset_alias_and_endpoints_without_a_hook_are_warned_about(
    mlflow_registry_restored: Any, tmp_path: Path
) -> None:
    endpoints = [
        {"name": "canary-a", "url": "http://127.0.0.1:9", "model": "iris", "alias": "canary"},
        {"name": "canary-b", "url": "http://127.0.0.1:9", "model": "iris", "alias": "canary"},
    ]
    settings = make_settings(tmp_path, mlflow_registry_restored.tracking_uri, endpoints)
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    said: list[str] = []
    promoter = Promoter(settings, store, registry)
    # Applied with its re-check: an alias that was unset must still be unset ("none"), and is.
    result = promoter.apply(
        promoter.plan_promote("iris", 3, alias="canary"), actor="a", on_progress=said.append
    )
    warning = "not redeployed (no deploy hook): canary-a, canary-b keep serving v? until restarted"
    assert result.ok and result.message == "promoted iris: alias canary v- -> v3"
    assert result.warnings == [warning] and result.deploys == []
    assert said == ["moving alias canary of iris: v- -> v3", f"warning: {warning}"]
    row = row_of(store, result.audit_id)
    assert (row["from_version"], row["detail"]["warnings"]) == (None, [warning])
    assert promoted_tags(registry, 3)["promoted_from"] == ""


def test_no_deploy_skips_the_hook_and_its_secrets_and_warns(
    mlflow_registry_restored: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    hook = {"command": f"touch {marker} ${{UNSET_DEPLOY_SECRET}}"}
    endpoints = [
        {"name": "iris-prod", "url": "http://127.0.0.1:9", "model": "iris", "deploy": hook},
        {
            "name": "iris-canary",
            "url": "http://127.0.0.1:9",
            "model": "iris",
            "alias": "canary",
            "deploy": hook,
        },
    ]
    settings = make_settings(tmp_path, mlflow_registry_restored.tracking_uri, endpoints)
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    refused = promote(settings, store, registry, "iris", 3, actor="a", probe=healthy())
    assert refused.refused and "${UNSET_DEPLOY_SECRET}" in refused.message
    result = promote(settings, store, registry, "iris", 3, actor="a", deploy=False, probe=healthy())
    warning = "not redeployed (--no-deploy): iris-prod keep serving v2 until redeployed"
    assert result.ok and result.warnings == [warning] and not marker.exists()
    assert row_of(store, result.audit_id)["detail"]["warnings"] == [warning]
    assert store.list_audit(action="deploy") == [] and registry.alias_version("iris", "production") == "3"
    # An alias that was unset: its endpoints serve no known version.
    canary = promote(settings, store, registry, "iris", 3, alias="canary", actor="a", deploy=False)
    assert canary.ok and canary.warnings == [
        "not redeployed (--no-deploy): iris-canary keep serving v? until redeployed"
    ]


def test_a_registry_that_refuses_the_move_leaves_a_failed_row(
    env: Any, mlflow_registry_restored: Any
) -> None:
    settings, store, registry = env
    refuse_writes(mlflow_registry_restored, "registered_model_aliases")
    result = promote(settings, store, registry, "iris", 3, actor="a", reason="r")
    assert (result.ok, result.refused, result.changed, result.from_version, result.to_version) == (
        False,
        False,
        False,
        "2",
        "3",
    )
    assert "read-only for this test" in result.message
    row = row_of(store, result.audit_id)
    assert (row["result"], row["detail"], row["reason"]) == ("failed", {"error": result.message}, "r")
    assert registry.alias_version("iris", "production") == "2" and promoted_tags(registry, 3) == {}


def test_a_registry_that_denies_the_move_leaves_a_refused_row(env: Any) -> None:
    settings, store, _registry = env

    class Denying(RegistryClient):
        def set_alias(self, model: str, alias: str, version: str) -> None:
            raise RegistryNotPermitted(f"not permitted: dave lacks EDIT on {model}")

    registry = Denying(settings.registry)
    result = promote(settings, store, registry, "iris", 3, actor="a")
    assert result == ChangeResult(
        False,
        "promote",
        "iris",
        PRODUCTION,
        "2",
        "3",
        "not permitted: dave lacks EDIT on iris",
        refused=True,
        audit_id=result.audit_id,
    )
    row = row_of(store, result.audit_id)
    assert (row["result"], row["detail"]) == ("refused", {"error": "not permitted: dave lacks EDIT on iris"})


def test_tags_that_cannot_be_written_are_a_warning_not_an_undo(
    env: Any, mlflow_registry_restored: Any
) -> None:
    settings, store, registry = env
    refuse_writes(mlflow_registry_restored, "model_version_tags")
    said: list[str] = []
    result = promote(settings, store, registry, "iris", 3, actor="a", on_progress=said.append)
    assert result.ok and result.changed and registry.alias_version("iris", "production") == "3"
    [warning] = result.warnings
    assert warning.startswith("alias moved, but writing the MLflow tags failed: ") and "read-only" in warning
    assert said[1:] == [f"warning: {warning}"]
    row = row_of(store, result.audit_id)
    assert (row["result"], row["detail"]["warnings"]) == ("ok", [warning])


def test_record_failure_audits_the_attempt_whole(env: Any) -> None:
    settings, store, registry = env
    promoter = Promoter(settings, store, registry)
    for exc, refused in (
        (RegistryNotPermitted("not permitted: dave lacks READ on iris"), True),
        (RegistryUnavailable("registry unreachable: connection refused"), False),
    ):
        result = promoter.record_failure(
            "rollback", "iris", actor="a", exc=exc, stage="Production", to_version="1", reason="why"
        )
        assert result == ChangeResult(
            False,
            "rollback",
            "iris",
            Target(stage="Production"),
            None,
            "1",
            str(exc),
            refused=refused,
            audit_id=result.audit_id,
        )
        assert row_of(store, result.audit_id) == {
            "actor": "a",
            "action": "rollback",
            "model": "iris",
            "alias": "stage:Production",
            "from_version": None,
            "to_version": "1",
            "reason": "why",
            "result": "refused" if refused else "failed",
            "detail": {"error": str(exc)},
            "alert_id": None,
            "endpoint": None,
        }
    # Without a stage, the alias given, else the one configured for the model.
    settings.registry.aliases = {"iris": "champion"}
    for alias, target in ((None, "champion"), ("canary", "canary")):
        result = promoter.record_failure(
            "promote", "iris", actor="a", exc=RegistryUnavailable("x"), alias=alias
        )
        assert result.target == Target(alias=target) and row_of(store, result.audit_id)["alias"] == target


def test_recheck_against_an_unreachable_registry_fails_and_audits(env: Any, tmp_path: Path) -> None:
    from tests.fixtures_mlflow import free_port

    settings, store, registry = env
    plan = Promoter(settings, store, registry).plan_promote("iris", 3)
    gone = make_settings(tmp_path, f"http://127.0.0.1:{free_port()}")
    gone.registry.timeout = 2
    result = Promoter(settings, store, RegistryClient(gone.registry)).apply(plan, actor="a", reason="r")
    assert (result.ok, result.refused, result.changed, result.from_version, result.to_version) == (
        False,
        False,
        False,
        "2",
        "3",
    )
    assert result.message.startswith("registry unreachable")
    row = row_of(store, result.audit_id)
    assert (row["result"], row["detail"], row["from_version"], row["to_version"], row["reason"]) == (
        "failed",
        {"error": result.message},
        "2",
        "3",
        "r",
    )
    assert registry.alias_version("iris", "production") == "2"


def test_a_rollback_whose_target_changed_since_the_plan_is_refused(env: Any, tmp_path: Path) -> None:
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 3, actor="a").ok  # production 2 -> 3, history [2]
    promoter = Promoter(settings, store, registry)
    plan = promoter.plan_rollback("iris")
    assert plan.ok and plan.new_version == "2"
    assert promote(settings, store, registry, "iris", 1, actor="b").ok  # 3 -> 1
    assert promote(settings, store, registry, "iris", 3, actor="b").ok  # 1 -> 3: same current, new target
    result = promoter.apply(plan, actor="a")
    assert result.refused and result.message == "the rollback target changed from v2 to v1"
    assert (result.from_version, result.to_version) == ("3", "1")
    row = row_of(store, result.audit_id)
    assert (row["result"], row["from_version"], row["to_version"]) == ("refused", "3", "1")
    assert registry.alias_version("iris", "production") == "3"
    # A rollback plan gone stale in its current version says that alone, not a changed target too.
    stale = promoter.plan_rollback("iris")
    assert promote(settings, store, registry, "iris", 2, actor="c").ok  # 3 -> 2
    refused = promoter.apply(stale, actor="a")
    assert refused.refused and refused.message == (
        "alias production of iris changed since you looked: it is v2, you expected v3"
    )
    # Its audit row names the version the alias points to now, not the one the stale plan saw.
    assert row_of(store, refused.audit_id)["from_version"] == "2"
    assert promote(settings, store, registry, "iris", 3, actor="c").ok  # back to 3
    # The re-checked plan is the one applied: a fresh plan of the same rollback goes through.
    again = promoter.plan_rollback("iris")
    fresh = promoter.apply(again, actor="a")
    assert fresh.ok and (fresh.from_version, fresh.to_version) == ("3", again.new_version)


def test_a_promote_whose_alias_moved_since_the_plan_is_refused(env: Any) -> None:
    settings, store, registry = env
    promoter = Promoter(settings, store, registry)
    plan = promoter.plan_promote("iris", 3)
    assert plan.ok and plan.current_version == "2"
    assert promote(settings, store, registry, "iris", 1, actor="b").ok  # 2 -> 1 meanwhile
    result = promoter.apply(plan, actor="a")
    assert result.refused and result.message == (
        "alias production of iris changed since you looked: it is v1, you expected v2"
    )
    assert (result.from_version, result.to_version) == ("1", "3")
    assert registry.alias_version("iris", "production") == "1"
    # Without the re-check (the CLI plans and applies at once) the plan is applied as it was made.
    applied = promoter.apply(plan, actor="a", recheck=False)
    assert applied.ok and (applied.from_version, applied.to_version) == ("2", "3")
    assert registry.alias_version("iris", "production") == "3"


def test_redeploy_outcomes_end_the_message_and_the_audit_row(
    mlflow_registry_restored: Any, tmp_path: Path
) -> None:
    hook = {"command": "echo {alias} {action} {actor} {from_version}", "verify_timeout": 1}
    endpoints = [
        {"name": "iris-a", "url": "http://127.0.0.1:9", "model": "iris", "deploy": hook},
        {"name": "iris-b", "url": "http://127.0.0.1:9", "model": "iris", "deploy": hook},
    ]
    settings = make_settings(tmp_path, mlflow_registry_restored.tracking_uri, endpoints)
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    said: list[str] = []
    failed = promote(
        settings,
        store,
        registry,
        "iris",
        3,
        actor="a",
        reason="r",
        probe=never_healthy,
        on_progress=said.append,
    )
    assert (
        failed.warnings == []
        and "iris-a: running deploy command" in said
        and "iris-b: running deploy command" in said
    )
    alerts = sorted(a.id for a in store.list_alerts())
    assert len(alerts) == 2 and sorted(failed.alert_ids) == alerts
    assert failed.ok is False and failed.changed and [d.ok for d in failed.deploys] == [False, False]
    assert failed.message == (
        "promoted iris: alias production v2 -> v3; but "
        "deploy of iris v3 to iris-a did not converge within 1s: connection refused; "
        "deploy of iris v3 to iris-b did not converge within 1s: connection refused "
        f"(alert raised: #{failed.alert_ids[0]}, #{failed.alert_ids[1]})"
    )
    row = row_of(store, failed.audit_id)
    assert row["result"] == "ok" and row["detail"]["deploys"] == [d.as_dict() for d in failed.deploys]
    assert [d.hook.output for d in failed.deploys] == ["production promote a 2\n"] * 2
    rows = sorted(store.list_audit(action="deploy"), key=lambda r: str(r.endpoint))
    assert [
        (r.actor, r.alias, r.from_version, r.to_version, r.reason, r.endpoint, r.result) for r in rows
    ] == [
        ("a", "production", "2", "3", "r", "iris-a", "failed"),
        ("a", "production", "2", "3", "r", "iris-b", "failed"),
    ]

    fine = rollback(settings, store, registry, "iris", actor="b", probe=healthy("2"))
    assert fine.ok and fine.alert_ids == [] and [d.ok for d in fine.deploys] == [True, True]
    assert [d.hook.output for d in fine.deploys] == ["production rollback b 3\n"] * 2
    assert fine.message == "; ".join(
        ["rolled back iris: alias production v3 -> v2", *(d.summary for d in fine.deploys)]
    )
    assert row_of(store, fine.audit_id)["detail"]["deploys"] == [d.as_dict() for d in fine.deploys]


def test_a_stage_redeploy_passes_the_stage_as_the_alias(
    mlflow_registry_restored: Any, tmp_path: Path
) -> None:
    hook = {"command": "echo {alias}"}
    endpoints = [
        {"name": "iris-st", "url": "http://127.0.0.1:9", "model": "iris", "alias": "Staging", "deploy": hook}
    ]
    settings = make_settings(tmp_path, mlflow_registry_restored.tracking_uri, endpoints)
    store, registry = Store(settings.store.path), RegistryClient(settings.registry)
    promoter = Promoter(settings, store, registry)
    result = promoter.apply(promoter.plan_promote("iris", 3, stage="Staging"), actor="a", probe=healthy())
    assert result.ok, result.message
    assert [d.hook.output for d in result.deploys] == ["Staging\n"]
    [deploy_row] = store.list_audit(action="deploy")
    assert (deploy_row.alias, deploy_row.endpoint, deploy_row.to_version) == ("stage:Staging", "iris-st", "3")
    assert promoted_tags(registry, 3)["promoted_target"] == "stage Staging"
    history = json.loads(registry.get_model("iris").tags["mlops_console.stage_history.Staging"])
    assert (history["current"], history["by"]) == ("3", "a")


def test_the_promoters_plans_read_the_audit_trail_when_the_history_tag_is_gone(
    env: Any, mlflow_registry_restored: Any
) -> None:
    from mlflow import MlflowClient

    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 3, actor="a").ok  # 2 -> 3
    MlflowClient(mlflow_registry_restored.tracking_uri).delete_registered_model_tag(
        "iris", "mlops_console.history.production"
    )
    promoter = Promoter(settings, store, registry)
    assert promoter.plan_promote("iris", 1).history == ["2", "3"]
    back = promoter.plan_rollback("iris", expect_current=3)
    assert back.ok and back.new_version == "2"
    assert not promoter.plan_rollback("iris", expect_current=2).ok


def test_the_audit_row_reads_pending_while_mlflow_is_asked(env: Any) -> None:
    settings, store, _registry = env
    seen: list[tuple[str, dict[str, Any] | None]] = []

    class Watching(RegistryClient):
        def set_alias(self, model: str, alias: str, version: str) -> None:
            [row] = store.list_audit()
            seen.append((row.result, row.detail))
            super().set_alias(model, alias, version)

    result = promote(settings, store, Watching(settings.registry), "iris", 3, actor="a")
    assert result.ok and seen == [("pending", {"endpoints": []})]
    assert [r.result for r in store.list_audit()] == ["ok"]


def test_the_promoter_rolls_back_the_alias_or_stage_it_is_given(env: Any) -> None:
    settings, store, registry = env
    promoter = Promoter(settings, store, registry)
    for target, first, second in (({"alias": "staging"}, 1, None), ({"stage": "Staging"}, 3, 1)):
        for version in (first, second):
            if version is not None:
                assert promoter.apply(promoter.plan_promote("iris", version, **target), actor="a").ok
        # Re-checked, like the TUI's rollback: the plan and its re-check both read this target.
        back = promoter.apply(promoter.plan_rollback("iris", **target), actor="b")
        assert back.ok, back.message
        assert (back.target, back.from_version, back.to_version) == (Target(**target), "1", "3")
    assert (
        registry.alias_version("iris", "staging") == "3" and registry.stage_version("iris", "Staging") == "3"
    )
    assert registry.alias_version("iris", "production") == "2"
