"""The HTTP path: RegistryClient and promotion against a real `mlflow server` on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_console.config import parse_settings
from mlops_console.core.registry import RegistryClient, RegistryNotFound
from mlops_console.core.registry.records import registry_user
from mlops_console.core.store import Store
from tests._changes import promote, rollback
from tests._loopback import RefusingProxy

pytestmark = pytest.mark.slow


@pytest.fixture
def server_env(mlflow_server, tmp_path: Path):
    settings = parse_settings(
        {
            # Generous: a cold `mlflow server` on a loaded 2-core machine can take seconds per first call.
            "registry": {"tracking_uri": mlflow_server.url, "timeout": 30},
            "store": {"path": str(tmp_path / "console.db")},
        }
    )
    return settings, Store(settings.store.path), RegistryClient(settings.registry)


def test_reads_over_http(server_env) -> None:
    _settings, _store, registry = server_env
    models = {m.name: m for m in registry.list_models()}
    assert models["iris"].aliases["production"] == "2"
    page = registry.versions("iris")
    assert [v.version for v in page] == ["3", "2", "1"] and page[1].aliases == ["production"]
    assert page[0].metrics["accuracy"] > 0.5
    assert registry.serving_input_example("iris", 3)["dataframe_split"]["columns"]
    with pytest.raises(RegistryNotFound):
        registry.version("iris", 77)


def test_promote_and_rollback_over_http(server_env) -> None:
    settings, store, registry = server_env
    result = promote(
        settings, store, registry, "diabetes", 2, alias="canary", actor="http-user", reason="over http"
    )
    assert result.ok and result.from_version is None and registry.alias_version("diabetes", "canary") == "2"
    assert registry.version("diabetes", 2).tags["promoted_by"] == "http-user"
    assert promote(settings, store, registry, "diabetes", 1, alias="canary", actor="u").ok
    back = rollback(settings, store, registry, "diabetes", alias="canary", actor="u")
    assert back.ok and back.to_version == "2"
    again = rollback(settings, store, registry, "diabetes", alias="canary", actor="u")
    assert again.refused and "no previous version" in again.message
    stale = promote(settings, store, registry, "diabetes", 1, alias="canary", actor="u", expect_current=1)
    assert stale.refused and registry.alias_version("diabetes", "canary") == "2"


def test_rollback_the_registry_refuses_is_refused_whole_and_audited(server_env, mlflow_server) -> None:
    """An authenticating registry answers the alias write with 403: the rollback says who lacks what,
    the alias and the MLflow tags stay as they were, and the audit records the refusal."""
    settings, store, registry = server_env
    assert promote(settings, store, registry, "iris", 1, alias="staging", actor="a").ok
    assert promote(settings, store, registry, "iris", 3, alias="staging", actor="a").ok
    tags_before = registry.version("iris", 1).tags
    writes = {"POST", "PATCH", "DELETE"}
    proxy = RefusingProxy(
        mlflow_server.url, refuse=lambda method, path: method in writes and "/registered-models/alias" in path
    ).start()
    try:
        guarded = parse_settings(
            {
                "registry": {"tracking_uri": proxy.url, "timeout": 30},
                "store": {"path": str(settings.store.path)},
            }
        )
        through_proxy = RegistryClient(guarded.registry)
        result = rollback(
            guarded, store, through_proxy, "iris", alias="staging", actor="carol", reason="bad v3"
        )
    finally:
        proxy.stop()
    assert result.refused and not result.changed and not result.ok
    assert result.message == f"not permitted: {registry_user()} lacks EDIT on iris"
    assert proxy.refused == [("POST", "/api/2.0/mlflow/registered-models/alias")], "one write, then nothing"
    assert not [r for r in proxy.passed if r[0] in writes], "no tag written after the refused alias"
    assert registry.alias_version("iris", "staging") == "3"
    assert registry.version("iris", 1).tags == tags_before
    [audit] = store.list_audit(action="rollback")
    assert (audit.actor, audit.result, audit.from_version, audit.to_version) == ("carol", "refused", "3", "1")
    assert audit.detail == {"error": result.message}
