"""RegistryClient against a real sqlite-backed MLflow registry (and a dead HTTP one)."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest

from mlops_console.config import RegistrySettings
from mlops_console.core.registry import (
    RegistryClient,
    RegistryNotFound,
    RegistryUnavailable,
    alias_problem,
)


@pytest.fixture
def registry(mlflow_registry_template) -> RegistryClient:  # read-only tests share the template
    return RegistryClient(RegistrySettings(tracking_uri=mlflow_registry_template.tracking_uri, timeout=10))


def test_list_models_with_aliases(registry: RegistryClient) -> None:
    models = {m.name: m for m in registry.list_models()}
    assert set(models) == {"iris", "diabetes"}
    assert models["iris"].aliases == {"production": "2", "staging": "3"}
    assert models["diabetes"].aliases == {"production": "1", "staging": "2"}
    assert models["iris"].updated_at and models["iris"].updated_at > 1e9


def test_versions_newest_first_with_aliases_and_metrics(registry: RegistryClient) -> None:
    page = registry.versions("iris")
    assert [v.version for v in page] == ["3", "2", "1"]
    assert page[1].aliases == ["production"] and page[0].aliases == ["staging"]
    assert all(v.status == "READY" for v in page)
    assert page[1].metrics["accuracy"] == pytest.approx(0.911, abs=0.01)
    assert page[0].run_id and page[0].created_at and page[0].tags["algorithm"] == "random-forest"


def test_versions_paged(registry: RegistryClient) -> None:
    first = registry.versions("iris", max_results=2, with_metrics=False)
    assert [v.version for v in first] == ["3", "2"] and first.next_page_token
    second = registry.versions("iris", max_results=2, page_token=first.next_page_token, with_metrics=False)
    assert [v.version for v in second] == ["1"]


def test_version_alias_and_missing(registry: RegistryClient) -> None:
    assert registry.version("diabetes", 2).metrics.keys() >= {"rmse", "mae", "r2"}
    assert registry.alias_version("iris", "production") == "2"
    assert registry.alias_version("iris", "canary") is None
    with pytest.raises(RegistryNotFound):
        registry.version("iris", 99)
    with pytest.raises(RegistryNotFound):
        registry.get_model("nope")
    with pytest.raises(RegistryNotFound):
        registry.alias_version("nope", "production")


def test_serving_input_example(registry: RegistryClient) -> None:
    example = registry.serving_input_example("iris", 2)
    assert example is not None
    assert example["dataframe_split"]["columns"][0] == "sepal_length"


def test_alias_problem() -> None:
    assert alias_problem("production") is None
    assert "reserved" in (alias_problem("latest") or "")
    assert "reserved" in (alias_problem("v3") or "")
    assert alias_problem("bad alias!") is not None


def test_unreachable_server_fails_fast() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = RegistryClient(RegistrySettings(tracking_uri=f"http://127.0.0.1:{port}", timeout=2))
    with pytest.raises(RegistryUnavailable, match=rf"registry unreachable: .*127\.0\.0\.1:{port}"):
        client.list_models()
    # How fast it gives up is a figure, not a test: `python -m bench.deadlines`.


def test_blackholed_server_hits_the_deadline() -> None:
    """A server that accepts but never answers: the call gives up after one attempt, instead of MLflow's
    retries for minutes (the time it takes is measured by `python -m bench.deadlines`)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        client = RegistryClient(
            RegistrySettings(tracking_uri=f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=1)
        )
        with pytest.raises(RegistryUnavailable, match="registry unreachable"):
            client.get_model("iris")
        assert len(accepted) == 1, f"{len(accepted)} connections: the client retried"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def test_permission_errors_become_not_permitted(registry: RegistryClient, monkeypatch) -> None:
    from mlflow.exceptions import RestException

    from mlops_console.core.registry import RegistryNotPermitted
    from mlops_console.core.registry.errors import translate_error

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "dave")
    error = translate_error(
        RestException({"error_code": "PERMISSION_DENIED", "message": "Permission denied"}),
        "set alias",
        model="iris",
        write=True,
    )
    assert isinstance(error, RegistryNotPermitted)
    assert str(error) == "not permitted: dave lacks EDIT on iris"
