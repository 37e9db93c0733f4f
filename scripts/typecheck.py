"""Type-check `console/` and `plugins/` with mypy, under the names they install as.

    .venv/bin/python scripts/typecheck.py

The folders install as `mlops_console` and `mlops_console_plugins` (setuptools' package-dir mapping),
which mypy cannot see through an editable install's import hook. This links both folders under their
import names in a temporary directory, runs mypy on those packages with the settings in
`pyproject.toml` (strict for `mlops_console.core` and the adapters, `mlops_console_plugins`), and
prints paths as the repository has them. Exits with mypy's status.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"mlops_console": ROOT / "console", "mlops_console_plugins": ROOT / "plugins"}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="mlops-typecheck-") as tmp:
        for name, folder in PACKAGES.items():
            (Path(tmp) / name).symlink_to(folder, target_is_directory=True)
        command = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml")]
        for name in PACKAGES:
            command += ["-p", name]
        result = subprocess.run(
            command, cwd=ROOT, env={**os.environ, "MYPYPATH": tmp}, capture_output=True, text=True
        )
        output = result.stdout + result.stderr
        for name, folder in PACKAGES.items():
            output = output.replace(f"{tmp}/{name}/", f"{folder.relative_to(ROOT)}/")
        print(output, end="")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
