"""The core runs without Textual (the watcher and CLI reuse it unchanged) and never imports MLflow eagerly."""

from __future__ import annotations

import subprocess
import sys

BLOCK_AND_IMPORT = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import mlops_console.core, mlops_console_plugins
for pkg in (mlops_console.core, mlops_console_plugins):
    for mod in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
import mlops_console.cli, mlops_console.commands_watch, mlops_console.commands_alerts
print("ok")
"""


def run(blocked: set[str]) -> subprocess.CompletedProcess[str]:
    code = BLOCK_AND_IMPORT.replace("{blocked}", repr(blocked))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_core_imports_without_textual() -> None:
    result = run({"textual"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_core_and_cli_import_without_mlflow() -> None:
    result = run({"mlflow"})
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_nothing_imports_the_folder_names() -> None:
    """The folders `console/` and `plugins/` install as `mlops_console` and `mlops_console_plugins`.

    Run from the repository root, `import console` would still find the folder and load a second copy of
    every module beside the installed one (two stores, two alert books): nothing may use those names.
    """
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pattern = re.compile(r"^\s*(from|import)\s+(console|plugins)\b", re.MULTILINE)
    offenders = [
        str(path.relative_to(root))
        for folder in ("console", "plugins", "tests", "bench", "scripts")
        for path in (root / folder).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
