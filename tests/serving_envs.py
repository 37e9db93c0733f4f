"""Virtual environments for the real serving stacks the adapter tests start.

MLServer and BentoML pin fastapi, starlette and protobuf versions that fight mlflow's, and TorchServe
brings torch, so each lives in its own virtual environment, outside the project's. They are built once
and cached under `$MLOPS_SERVING_ENVS`, else the user cache dir (`~/.cache/mlops-console/serving-envs`),
in a folder named for the exact requirements; a folder whose install did not finish is rebuilt.
`.ci/run` builds them before the tests (`python3 -m tests.serving_envs build`); a test that needs one
builds it when it is missing, and a quick local run skips them all with `pytest -m "not serving"`.

Standard library only: `.ci/run` calls it before the project is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ENVS: dict[str, tuple[str, ...]] = {
    "mlserver": ("mlserver==1.7.1", "mlserver-sklearn==1.7.1"),
    "bentoml": ("bentoml==1.4.40", "scikit-learn"),
    # TorchServe's Java frontend needs a JDK 11+ on PATH (17 here); its Python worker imports torch,
    # yaml and numpy. torch 2.13.0 (CPU) is the wheel this machine keeps on disk.
    "torchserve": ("torch==2.13.0", "torchserve==0.12.0", "torch-model-archiver==0.12.0", "pyyaml", "numpy"),
}
"""Requirements of each stack. scikit-learn trains the test models inside the stack's own env, so the
pickles never cross scikit-learn versions."""
DONE = ".complete"
BUILD_TIMEOUT = 1500.0


def cache_root() -> Path:
    configured = os.environ.get("MLOPS_SERVING_ENVS")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlops-console" / "serving-envs"


def env_dir(name: str) -> Path:
    spec = "\n".join((f"python{sys.version_info.major}.{sys.version_info.minor}", *ENVS[name]))
    digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return cache_root() / f"{name}-{digest}"


def bin_path(name: str, program: str) -> Path:
    return env_dir(name) / "bin" / program


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another process building the same env: wait for it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(name: str, log: Path | None = None) -> tuple[Path, float]:
    """The env's folder, built if missing, and the seconds spent building it now (0.0 if cached)."""
    target = env_dir(name)
    if (target / DONE).exists():
        return target, 0.0
    with _locked(target.with_name(target.name + ".lock")):
        if (target / DONE).exists():
            return target, 0.0
        started = time.monotonic()
        shutil.rmtree(target, ignore_errors=True)
        log = log or target.with_name(target.name + ".log")
        with open(log, "w") as out:
            subprocess.run([sys.executable, "-m", "venv", str(target)], check=True, stdout=out, stderr=out)
            env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_PROGRESS_BAR": "off"}
            done = subprocess.run(
                [str(target / "bin" / "python"), "-m", "pip", "install", "-q", *ENVS[name]],
                stdout=out, stderr=out, env=env, timeout=BUILD_TIMEOUT,
            )  # fmt: skip
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"installing {name} into {target} failed ({done.returncode}):\n{tail}")
        (target / DONE).write_text(" ".join(ENVS[name]) + "\n")
        return target, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.serving_envs")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the missing environments")
    build.add_argument("names", nargs="*", default=sorted(ENVS))
    sub.add_parser("where", help="print each environment's folder")
    args = parser.parse_args(argv)
    if args.command == "where":
        for name in sorted(ENVS):
            print(f"{name}: {env_dir(name)}{'' if (env_dir(name) / DONE).exists() else ' (not built)'}")
        return 0
    for name in args.names:
        path, seconds = ensure(name)
        print(f"{name}: {path} ({f'built in {seconds:.0f} s' if seconds else 'cached'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
