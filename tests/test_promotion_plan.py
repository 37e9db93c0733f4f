"""Planning a promote or rollback against a real sqlite-backed MLflow registry: every refusal with its
exact words, which endpoints get redeployed, the history a change leaves. Planning changes nothing,
so these tests share one fresh registry copy each and run without deploys."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from mlops_console.config import Settings, parse_settings
from mlops_console.core.promotion.plan import missing_hook_env, plan_promote, plan_rollback, serving_endpoints
from mlops_console.core.promotion.target import resolve_target
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from tests._changes import promote

HOOK = {"command": "true"}


def make_settings(
    tmp_path: Path, uri: str, endpoints: list[dict[str, Any]] | None = None, **registry: Any
) -> Settings:
    return parse_settings(
        {
            "registry": {"tracking_uri": uri, "timeout": 10, **registry},
            "store": {"path": str(tmp_path / "console.db")},
            "endpoints": endpoints or [],
        }
    )


@pytest.fixture
def env(mlflow_registry, tmp_path: Path):  # type: ignore[no-untyped-def]
    endpoints = [
        {"name": "prod-hook", "url": "http://127.0.0.1:9", "model": "iris", "deploy": HOOK},
        {"name": "prod-plain", "url": "http://127.0.0.1:9", "model": "iris", "alias": "production"},
        {"name": "staging", "url": "http://127.0.0.1:9", "model": "iris", "alias": "staging", "deploy": HOOK},
        {"name": "other-model", "url": "http://127.0.0.1:9", "model": "diabetes", "deploy": HOOK},
    ]
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, endpoints)
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def test_a_valid_promote_plan(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    plan = plan_promote(settings, registry, "iris", 3, store=store)
    assert plan.ok and not plan.noop and plan.problems == []
    assert (plan.action, plan.model, plan.current_version, plan.new_version) == ("promote", "iris", "2", "3")
    assert plan.target.alias == "production"
    assert plan.endpoints == ["prod-hook"] and plan.not_redeployed == ["prod-plain"]
    assert plan.history == ["2"]
    rows = dict((k, (a, b)) for k, a, b in plan.metric_rows())
    assert rows["accuracy"] == (pytest.approx(0.91, abs=0.005), pytest.approx(0.89, abs=0.005))


def test_promote_refusals_in_words(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    mlflow_registry.set_status("iris", 3, "PENDING_REGISTRATION")
    cases = [
        (("iris", 3), {}, "iris v3 is PENDING_REGISTRATION, not READY"),
        (("iris", 42), {}, "iris v42 does not exist"),
        (("ghost", 1), {}, "model 'ghost' does not exist"),
        (("iris", 1), {"alias": "latest"}, "reserved"),
        (("iris", 1), {"stage": "Canary"}, "unknown stage 'Canary' (one of Staging, Production, Archived)"),
        (("iris", 1), {"expect_current": "3"}, "iris changed since you looked: it is v2, you expected v3"),
        (("iris", 1), {"expect_current": "unset"}, "it is v2, you expected unset"),
    ]  # fmt: skip
    for args, kwargs, expected in cases:
        plan = plan_promote(settings, registry, *args, store=store, **kwargs)
        assert not plan.ok and any(expected in p for p in plan.problems), (args, kwargs, plan.problems)
        assert len(plan.problems) == 1, plan.problems
    assert plan_promote(settings, registry, "iris", 1, store=store, expect_current="v2").ok
    assert plan_promote(settings, registry, "iris", 1, store=store, expect_current=2).ok


def test_expect_current_unset_matches_an_unset_alias(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    for given in ("", "none", "None", "unset"):
        plan = plan_promote(settings, registry, "iris", 1, alias="canary", store=store, expect_current=given)
        assert plan.ok and plan.current_version is None, (given, plan.problems)
    wrong = plan_promote(settings, registry, "iris", 1, alias="canary", store=store, expect_current="2")
    assert wrong.problems == ["alias canary of iris changed since you looked: it is unset, you expected v2"]


def test_promote_to_an_unset_alias_has_no_history_and_no_current(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    plan = plan_promote(settings, registry, "iris", 1, alias="canary", store=store)
    assert plan.ok and plan.current is None and plan.history == [] and not plan.noop
    assert plan.endpoints == [] and plan.not_redeployed == []


def test_promote_to_the_current_version_is_a_noop_plan(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    plan = plan_promote(settings, registry, "iris", 2, store=store)
    assert plan.ok and plan.noop and plan.history == []


def test_stage_targets_match_endpoints_by_name_case_insensitively(env) -> None:  # type: ignore[no-untyped-def]
    settings, _, _ = env
    target = resolve_target(settings, "iris", stage="staging")
    assert target.stage == "Staging"
    assert [e.name for e in serving_endpoints(settings, "iris", target)] == ["staging"]
    production = resolve_target(settings, "iris")
    assert [e.name for e in serving_endpoints(settings, "iris", production)] == ["prod-hook", "prod-plain"]
    assert serving_endpoints(settings, "fraud", production) == []
    diabetes = [e.name for e in serving_endpoints(settings, "diabetes", production)]
    assert diabetes == ["other-model"], "endpoints of other models listed before it are skipped, not the end"


def test_a_model_specific_default_alias_picks_its_endpoints(mlflow_registry, tmp_path: Path) -> None:
    endpoints = [
        {"name": "live", "url": "http://127.0.0.1:9", "model": "iris", "deploy": HOOK},
        {"name": "prod", "url": "http://127.0.0.1:9", "model": "iris", "alias": "production", "deploy": HOOK},
    ]
    settings = make_settings(tmp_path, mlflow_registry.tracking_uri, endpoints, aliases={"iris": "staging"})
    plan = plan_promote(settings, RegistryClient(settings.registry), "iris", 1)
    assert plan.target.alias == "staging" and plan.current_version == "3"
    assert plan.endpoints == ["live"]


def test_missing_hook_env_names_only_the_hooks_the_plan_runs(
    env, tmp_path: Path, mlflow_registry, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    endpoints = [
        {"name": "a", "url": "http://127.0.0.1:9", "model": "iris", "deploy": {"command": "x ${HOOK_TOKEN}"}},
        {
            "name": "b",
            "url": "http://127.0.0.1:9",
            "model": "diabetes",
            "deploy": {"command": "y ${HOOK_TOKEN}"},
        },
    ]
    settings = parse_settings(
        {
            "registry": {"tracking_uri": mlflow_registry.tracking_uri},
            "store": {"path": str(tmp_path / "x.db")},
            "endpoints": endpoints,
        },
        require_env=False,
    )
    plan = plan_promote(settings, RegistryClient(settings.registry), "iris", 3)
    problems = missing_hook_env(settings, plan)
    assert len(problems) == 1 and problems[0].startswith("endpoints[0].deploy.command")
    assert "${HOOK_TOKEN}" in problems[0]


def test_rollback_plans_and_their_refusals(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    nothing = plan_rollback(settings, store, registry, "iris")
    assert nothing.problems == [
        "no previous version to roll back to: the console has no earlier alias production of iris on record"
    ]
    ghost = plan_rollback(settings, store, registry, "ghost")
    assert ghost.problems == ["model 'ghost' does not exist"]
    bad = plan_rollback(settings, store, registry, "iris", alias="latest")
    assert not bad.ok and "reserved" in bad.problems[0]
    assert promote(settings, store, registry, "iris", 1, actor="a", deploy=False).ok  # 2 -> 1
    assert promote(settings, store, registry, "iris", 3, actor="a", deploy=False).ok  # 1 -> 3
    plan = plan_rollback(settings, store, registry, "iris")
    assert plan.ok and (plan.action, plan.current_version, plan.new_version) == ("rollback", "3", "1")
    assert plan.history == ["2"], "what is left to roll back to after this one"
    assert plan.endpoints == ["prod-hook"] and plan.not_redeployed == ["prod-plain"]
    registry.set_alias("iris", "production", "2")  # moved outside the console
    moved = plan_rollback(settings, store, registry, "iris")
    assert moved.problems == [
        "alias production of iris was moved outside the console (now v2); "
        "pick the version explicitly with `mlops-console promote iris N`"
    ]


def test_rollback_of_a_stage_restores_its_previous_version(env) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 1, stage="staging", actor="a", deploy=False).ok
    assert promote(settings, store, registry, "iris", 3, stage="staging", actor="a", deploy=False).ok
    plan = plan_rollback(settings, store, registry, "iris", stage="staging")
    assert plan.ok and (plan.target.stage, plan.target.alias) == ("Staging", None)
    assert (plan.current_version, plan.new_version, plan.history) == ("3", "1", [])
    assert plan.endpoints == ["staging"] and plan.not_redeployed == []


def test_rollback_falls_back_to_the_audit_trail_when_the_history_tag_is_gone(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    """Someone deleted the MLflow history tag: the store's audit trail still knows the previous versions."""
    settings, store, registry = env
    for version in (1, 3, 2):  # production 2 -> 1 -> 3 -> 2
        assert promote(settings, store, registry, "iris", version, actor="a", deploy=False).ok
    tag = resolve_target(settings, "iris").tag
    MlflowClient(mlflow_registry.tracking_uri).delete_registered_model_tag("iris", tag)
    plan = plan_rollback(settings, store, registry, "iris")
    assert plan.ok and (plan.current_version, plan.new_version, plan.history) == ("2", "3", ["2", "1"])
    assert plan_promote(settings, registry, "iris", 1, store=store).history == ["2", "1", "3", "2"]
    fresh = plan_rollback(settings, None, registry, "iris")
    assert fresh.problems == [
        "no previous version to roll back to: the console has no earlier alias production of iris on record"
    ]
    assert plan_promote(settings, registry, "iris", 1).history == ["2"]


def test_rollback_to_a_deleted_version_is_refused(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    assert promote(settings, store, registry, "iris", 1, actor="a", deploy=False).ok  # 2 -> 1
    MlflowClient(mlflow_registry.tracking_uri).delete_model_version("iris", "2")
    plan = plan_rollback(settings, store, registry, "iris")
    assert plan.problems == ["the previous version iris v2 no longer exists"]
    assert plan.new is None and plan.endpoints == []


def test_a_version_not_ready_is_refused_with_its_status_message_if_any(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    mlflow_registry.set_status("iris", 3, "FAILED_REGISTRATION", "artifact copy failed")
    assert plan_promote(settings, registry, "iris", 3, store=store).problems == [
        "iris v3 is FAILED_REGISTRATION, not READY (artifact copy failed)"
    ]
    mlflow_registry.set_status("iris", 3, "PENDING_REGISTRATION")
    assert plan_promote(settings, registry, "iris", 3, store=store).problems == [
        "iris v3 is PENDING_REGISTRATION, not READY"
    ]


def test_metric_rows_pair_every_metric_of_either_version(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    client = MlflowClient(mlflow_registry.tracking_uri)
    client.log_metric(str(registry.version("iris", 3).run_id), "zz_only_new", 0.5)
    client.log_metric(str(registry.version("iris", 2).run_id), "aa_only_current", 7.0)
    plan = plan_promote(settings, registry, "iris", 3, store=store)
    assert plan.current is not None and plan.new is not None
    current, new = plan.current.metrics, plan.new.metrics
    rows = plan.metric_rows()
    assert rows[0] == ("aa_only_current", 7.0, None) and rows[-1] == ("zz_only_new", None, 0.5)
    assert rows == [(key, current.get(key), new.get(key)) for key in sorted(set(current) | set(new))]
    assert "accuracy" in [key for key, _, _ in rows[1:-1]]
    # Nothing on one side: that side is None on every row.
    unset = plan_promote(settings, registry, "iris", 3, alias="canary", store=store)
    assert unset.current is None and unset.metric_rows() == [(key, None, new[key]) for key in sorted(new)]
    missing = plan_promote(settings, registry, "iris", 42, store=store)
    assert missing.new is None and missing.metric_rows() == [
        (key, current[key], None) for key in sorted(current)
    ]


def test_an_alias_on_a_deleted_version_plans_from_nothing(env, mlflow_registry) -> None:  # type: ignore[no-untyped-def]
    settings, store, registry = env
    MlflowClient(mlflow_registry.tracking_uri).delete_model_version("iris", "1")
    with sqlite3.connect(mlflow_registry.db_path) as db:  # an alias left on it, as an older MLflow left them
        db.execute("INSERT INTO registered_model_aliases (alias, version, name) VALUES ('canary', 1, 'iris')")
    plan = plan_promote(settings, registry, "iris", 3, alias="canary", store=store)
    assert (plan.action, plan.model, plan.target.alias) == ("promote", "iris", "canary")
    assert plan.current is None and plan.new_version == "3" and plan.ok
