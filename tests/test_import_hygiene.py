"""The core, the config and every command module import without Textual (the watcher and CLI reuse them
unchanged) and without MLflow (imported lazily, never on the start-up path)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BLOCK_AND_IMPORT = """
import importlib, pkgutil, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import mlops_console.commands, mlops_console.config, mlops_console.core, mlops_console_plugins
for pkg in (mlops_console.core, mlops_console_plugins, mlops_console.config, mlops_console.commands):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
import mlops_console.cli
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


def test_every_package_is_installed() -> None:
    """A package folder missing from `[tool.setuptools] packages` works in an editable install and is
    left out of a wheel: every folder with an `__init__.py` must be listed."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join((name, *init.parent.relative_to(root / folder).parts))
        for folder, name in (("console", "mlops_console"), ("plugins", "mlops_console_plugins"))
        for init in (root / folder).rglob("__init__.py")
    }
    assert found - listed == set()


WATCH_WITHOUT_REGISTRY = """
import asyncio, sys, time
from mlops_console.config import parse_settings
from mlops_console.core.engine import Engine
from mlops_console.core.store import Store

settings = parse_settings({
    "store": {"path": sys.argv[1]},
    "endpoints": [{"name": "api", "url": "http://127.0.0.1:9", "adapter": "generic", "interval": 0.2}],
})
store = Store(settings.store.path)

async def main():
    engine, stop = Engine(settings, store), asyncio.Event()
    task = asyncio.ensure_future(engine.run(stop))
    deadline = time.monotonic() + 60
    while not (store.open_alerts() and any(row["probes"] for row in store.read_status())):
        assert time.monotonic() < deadline, "no status row written"
        await asyncio.sleep(0.1)
    stop.set()
    await task

asyncio.run(main())
print(sorted(m for m in ("pandas", "numpy", "sqlite_utils", "mlflow") if m in sys.modules))
"""


def test_a_watcher_without_registry_loads_neither_pandas_nor_numpy(tmp_path: Path) -> None:
    """Leading, probing and writing its store (lease, alerts, status rows, detector state) through
    sqlite-utils needs neither: about 85 MB of resident memory a fleet's watcher would carry for
    nothing."""
    result = subprocess.run(
        [sys.executable, "-c", WATCH_WITHOUT_REGISTRY, str(tmp_path / "c.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['sqlite_utils']"


STORE_THEN_PANDAS = """
import sys, threading
from mlops_console.core.store import Store

seen = {}
def other():
    import pandas  # another thread, while the store imports sqlite-utils
    seen["thread"] = pandas.__name__
thread = threading.Thread(target=other)
thread.start()
Store(sys.argv[1]).add_audit(actor="me", action="promote", result="ok")
thread.join()
import numpy, pandas, sqlite_utils
print(seen["thread"], pandas.__name__, numpy.__name__, len(Store(sys.argv[1]).list_audit()))
"""


def test_pandas_hidden_from_sqlite_utils_only(tmp_path: Path) -> None:
    """Everyone else (mlflow, in the console) still imports pandas and numpy, in any thread."""
    result = subprocess.run(
        [sys.executable, "-c", STORE_THEN_PANDAS, str(tmp_path / "c.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["pandas", "pandas", "numpy", "1"]
