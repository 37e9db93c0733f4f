"""With `MLOPS_REQUIRE_SERVING=1` (set by `.ci/run`), a run in which the real-stack tests did not all run
and pass fails, whatever the other tests did: a serving test that was skipped, deselected (`-m "not
serving"`) or never collected would otherwise leave CI green with the adapters untested against their
servers. Without the variable, a quick local run may skip them."""

from __future__ import annotations

import os

import pytest

REQUIRED = "MLOPS_REQUIRE_SERVING"
STACKS = ("mlserver", "bentoml", "torchserve")
"""Every stack must have at least one serving test that passed."""


class _Guard:
    def __init__(self) -> None:
        self.passed: set[str] = set()
        self.not_run: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "serving" not in report.keywords:
            return
        if report.skipped:
            self.not_run.append(f"{report.nodeid} skipped")
        elif report.when == "call" and report.passed:
            self.passed.add(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        missing = [s for s in STACKS if not any(f"test_stack_{s}.py::" in node for node in self.passed)]
        problems = self.not_run + [f"no passing serving test for {stack}" for stack in missing]
        if not problems:
            return
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"{REQUIRED}=1 and the real-stack tests did not all run:", red=True)
            for problem in problems:
                reporter.write_line(f"  {problem}", red=True)
        if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(REQUIRED) == "1":
        config.pluginmanager.register(_Guard(), "serving-guard")
