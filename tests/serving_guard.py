"""Under `MLOPS_CONSOLE_NO_SKIPS=1` (set by `.ci/run`), a run in which a serving stack has no passing
real-stack test fails. `tests/conftest.py` fails the run on a skipped test; this covers what is no
skip: the serving tests deselected (`-m "not serving"`), or a stack's test module gone, which would
otherwise leave CI green with an adapter untested against its server."""

from __future__ import annotations

import os

import pytest

REQUIRED = "MLOPS_CONSOLE_NO_SKIPS"
STACKS = ("mlserver", "bentoml", "torchserve")
"""Each must have at least one `serving` test in `tests/test_stack_<stack>.py` that passed."""


class _Guard:
    def __init__(self) -> None:
        self.passed: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "serving" in report.keywords and report.when == "call" and report.passed:
            self.passed.add(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        missing = [s for s in STACKS if not any(f"test_stack_{s}.py::" in node for node in self.passed)]
        if not missing:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"{REQUIRED}=1: no passing serving test for {', '.join(missing)} (skipped, deselected or "
                "missing): this run fails",
                red=True,
            )
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(REQUIRED) == "1":
        config.pluginmanager.register(_Guard(), "serving-guard")
