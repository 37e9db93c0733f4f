"""`mlops-console --version`: the installed package's version, exit 0, before any config is read."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path


def test_version_prints_the_package_version_and_exits_0(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("mlops-console")
    missing = tmp_path / "no-such-config.toml"  # --version must not need a config
    result = subprocess.run(
        [str(script), "--config", str(missing), "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"mlops-console {version('mlops-console')}"
    assert result.stderr == ""
