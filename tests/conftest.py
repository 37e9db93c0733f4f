"""Shared fixtures. Every test runs with its own config and data dirs, never the user's."""

from __future__ import annotations

import pytest

pytest_plugins = ["tests.fixtures_mlflow", "tests.serving_guard", "pytester"]


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("MLOPS_CONSOLE_CONFIG", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
