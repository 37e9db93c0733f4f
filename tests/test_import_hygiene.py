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
import console.core, plugins
for pkg in (console.core, plugins):
    for mod in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
import console.cli, console.commands_watch, console.commands_alerts
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
