"""Mutation testing of the decision modules with mutmut, one module at a time, and its score.

    .venv/bin/python scripts/mutation.py                 # list the modules and their tests
    .venv/bin/python scripts/mutation.py alerts_book     # mutate one module, print its score
    .venv/bin/python scripts/mutation.py alerts_book --survivors   # ... and the diff of each survivor
    .venv/bin/python scripts/mutation.py alerts_book --retest      # survivors again, after new tests
    .venv/bin/python scripts/mutation.py promotion_plan --only '*_check_expected__*'  # some functions
    .venv/bin/python scripts/mutation.py --all           # every module, one after the other

The modules and the tests that judge each one are `[tool.mutmut.modules.*]` in pyproject.toml. mutmut
expects a package under `src/` named like its folder, and ours installs `console/` as `mlops_console`,
so each module runs in its own copy of the tree laid out that way (`.mutation/<module>/`, kept between
runs: mutmut resumes where it stopped and retests only what changed). Runs are niced and use one worker:
the machine is shared.

Score = killed (including timeouts) / mutants that ran. "no tests" mutants (code no selected test
executes) count as survivors: nothing would notice those changes either.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
TARGET = 0.85
KILLED = {"killed", "timeout", "caught by type check"}
NOT_RUN = {"skipped", "not checked", "check was interrupted by user"}


def modules() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return dict(config["modules"])


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def _without_mutmut_tables(text: str) -> str:
    """pyproject.toml minus its `[tool.mutmut...]` tables (the copy gets a generated one)."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("["):
            skipping = line.startswith("[tool.mutmut")
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def stage(name: str, module: dict[str, Any]) -> Path:
    """`.mutation/<name>/`: src/mlops_console (= console/), src/mlops_console_plugins, tests/, config."""
    where = WORK / name
    src = where / "src"
    if src.exists():
        shutil.rmtree(src)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "console", src / "mlops_console", ignore=ignore)
    shutil.copytree(ROOT / "plugins", src / "mlops_console_plugins", ignore=ignore)
    # tests/ holds the module's test files and the shared helpers, and the selection is always
    # "tests/": adding a test file to a module then keeps mutmut's earlier verdicts (a change of the
    # selection itself would reset them all).
    if (where / "tests").exists():
        shutil.rmtree(where / "tests")
    selected = {Path(t).name for t in module["tests"]}
    shutil.copytree(
        ROOT / "tests",
        where / "tests",
        ignore=lambda folder, names: (
            [n for n in names if n.startswith("test_") and n.endswith(".py") and n not in selected]
            + list(ignore(folder, names))
        ),
    )
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    # A module's table may set mutmut options of its own (e.g. `process_isolation`) over the shared ones.
    settings = {k: v for k, v in base.items() if k != "modules"} | {
        k: v for k, v in module.items() if k not in ("paths", "tests")
    }
    only = [
        str(Path("src") / "mlops_console" / Path(path).relative_to("console")) for path in module["paths"]
    ]
    generated = [
        "[tool.mutmut]",
        'source_paths = ["src/"]',
        f"only_mutate = {_toml_list(only)}",
        'pytest_add_cli_args_test_selection = ["tests/"]',
    ]
    for key, value in settings.items():
        if isinstance(value, list):
            generated.append(f"{key} = {_toml_list(value)}")
        else:
            generated.append(f"{key} = {json.dumps(value)}")
    text = _without_mutmut_tables((ROOT / "pyproject.toml").read_text())
    (where / "pyproject.toml").write_text(text + "\n" + "\n".join(generated) + "\n")
    return where


def run(
    name: str, module: dict[str, Any], jobs: int, retest: bool = False, only: list[str] | None = None
) -> int:
    survivors = (
        [key for key, status in results(name).items() if status not in KILLED | NOT_RUN] if retest else []
    )
    where = stage(name, module)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    # Property tests run their small, derandomized profile: the same verdict for a mutant on every run.
    env = {"HYPOTHESIS_PROFILE": "mutation", **os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    # The MLflow registry the promotion tests train is built once per module, not once per mutant.
    env["MLOPS_TEST_REGISTRY_CACHE"] = str(where / "registry")
    command = ["nice", "-n", "19", mutmut, "run", "--max-children", str(jobs), *survivors, *(only or [])]
    return subprocess.call(command, cwd=where, env=env)


def results(name: str) -> dict[str, str]:
    where = WORK / name
    if not (where / "mutants").exists():
        return {}
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    out = subprocess.run(
        [mutmut, "results", "--all", "true"], cwd=where, capture_output=True, text=True, check=False
    ).stdout
    found = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\S+): (.+)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def score(found: dict[str, str]) -> tuple[int, int, float | None]:
    ran = [status for status in found.values() if status not in NOT_RUN]
    killed = sum(status in KILLED for status in ran)
    return killed, len(ran), (killed / len(ran) if ran else None)


def report(name: str, survivors: bool) -> float | None:
    found = results(name)
    killed, ran, ratio = score(found)
    counts: dict[str, int] = {}
    for status in found.values():
        counts[status] = counts.get(status, 0) + 1
    shown = f"{ratio:.1%}" if ratio is not None else "n/a"
    flag = "" if ratio is None or ratio >= TARGET else f"  (below the {TARGET:.0%} target)"
    print(f"{name}: {killed}/{ran} killed = {shown}{flag}  {json.dumps(counts, sort_keys=True)}")
    if survivors:
        mutmut = str(Path(sys.executable).with_name("mutmut"))
        for key, status in sorted(found.items()):
            if status not in KILLED and status not in NOT_RUN:
                print(f"--- {key}: {status}")
                subprocess.call([mutmut, "show", key], cwd=WORK / name)
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("module", nargs="*", help="module names from [tool.mutmut.modules]")
    parser.add_argument("--all", action="store_true", help="every module, one after the other")
    parser.add_argument("--report", action="store_true", help="print the last scores without running")
    parser.add_argument("--survivors", action="store_true", help="show the diff of every surviving mutant")
    parser.add_argument(
        "--retest", action="store_true", help="run the survivors of the last run again (after adding tests)"
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        metavar="PATH",
        help="judge with these tests instead (e.g. a before/after figure)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PATTERN",
        help="run only these mutants (fnmatch on mutmut's names, e.g. '*plan_rollback__*')",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="mutmut workers (default 1: the machine is shared)"
    )
    args = parser.parse_args(argv)
    known = modules()
    names = list(known) if args.all else args.module
    if not names:
        for name, module in known.items():
            print(f"{name}: {' '.join(module['paths'])}\n    tests: {' '.join(module['tests'])}")
        return 0
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; one of {', '.join(known)}")
    below = False
    for name in names:
        module = dict(known[name], tests=args.tests) if args.tests else known[name]
        if not args.report:
            run(name, module, args.jobs, retest=args.retest, only=args.only)
        ratio = report(name, args.survivors)
        below = below or ratio is None or ratio < TARGET
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
