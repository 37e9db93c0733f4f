"""Shared fixtures. Every test runs with its own config and data dirs, never the user's."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["tests.fixtures_mlflow", "tests.fixtures_loopback", "tests.serving_guard", "pytester"]


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.delenv("MLOPS_CONSOLE_CONFIG", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


_skipped: list[str] = []


def _no_skips() -> bool:
    """`.ci/run` sets MLOPS_CONSOLE_NO_SKIPS=1: there a skipped test fails the run, so CI cannot pass
    because a real part (a server, a tool, a permission) was missing."""
    return os.environ.get("MLOPS_CONSOLE_NO_SKIPS") == "1"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _no_skips() and _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _no_skips() and _skipped:
        terminalreporter.write_line(
            f"MLOPS_CONSOLE_NO_SKIPS=1: {len(_skipped)} skipped test(s) fail this run: {', '.join(_skipped)}",
            red=True,
        )
