"""CI cannot go green without the real-stack tests: `tests/serving_guard.py` under
`MLOPS_CONSOLE_NO_SKIPS=1`, run on small stand-in test files in a separate pytest process."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PASSES = "import pytest\n\n@pytest.mark.serving\ndef test_serves():\n    pass\n"
SKIPS = "import pytest\n\n@pytest.mark.serving\ndef test_serves():\n    pytest.skip('no environment')\n"
OTHER = "def test_other():\n    pass\n"


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str, **files: str
) -> pytest.RunResult:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("MLOPS_CONSOLE_NO_SKIPS", "1")
    pytester.makepyfile(**files)
    pytester.makeini("[pytest]\nmarkers =\n    serving: real stacks\n")
    return pytester.runpytest_subprocess("-p", "tests.serving_guard", "-p", "no:cacheprovider", *args)


ALL = {"test_stack_mlserver": PASSES, "test_stack_bentoml": PASSES, "test_stack_torchserve": PASSES}


def test_every_stack_passing_keeps_the_run_green(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, **ALL, test_other=OTHER)
    assert result.ret == 0, result.stdout.str()


def test_a_skipped_stack_test_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, **{**ALL, "test_stack_bentoml": SKIPS}, test_other=OTHER)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*no passing serving test for bentoml (skipped*"])


def test_deselected_stack_tests_fail_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run(pytester, monkeypatch, "-m", "not serving", **ALL, test_other=OTHER)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*no passing serving test for mlserver, bentoml, torchserve*"])


def test_a_missing_stack_module_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {k: v for k, v in ALL.items() if k != "test_stack_torchserve"}
    result = run(pytester, monkeypatch, **files)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*no passing serving test for torchserve*"])
