"""How fast the console gives up on what does not answer: the figures the tests no longer assert.

    .venv/bin/python -m bench.deadlines

- registry refused: a call to a registry port nobody listens on (`registry.timeout` 2 s);
- registry blackholed: a server that accepts and never answers (`registry.timeout` 1 s);
- hook timeout: a deploy hook that sleeps past its `timeout` (1 s) is killed.

Loopback only. The tests check the behaviour (the error, one attempt, the hook process gone); the time
it takes depends on the machine's load, so it is measured here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

from mlops_console.config import DeploySettings, RegistrySettings
from mlops_console.core.deploy import run_hook
from mlops_console.core.registry import RegistryClient, RegistryUnavailable


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def registry_refused() -> float:
    client = RegistryClient(RegistrySettings(tracking_uri=f"http://127.0.0.1:{_free_port()}", timeout=2))
    client._mlflow_client()  # the mlflow import is not part of the figure
    started = time.monotonic()
    with contextlib.suppress(RegistryUnavailable):
        client.list_models()
    return time.monotonic() - started


def registry_blackholed() -> float:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        client = RegistryClient(RegistrySettings(tracking_uri=f"http://127.0.0.1:{port}", timeout=1))
        client._mlflow_client()
        started = time.monotonic()
        with contextlib.suppress(RegistryUnavailable):
            client.get_model("iris")
        return time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


def hook_timeout() -> float:
    started = time.monotonic()
    asyncio.run(run_hook(DeploySettings(command="exec sleep 30", timeout=1), {}))
    return time.monotonic() - started


def main() -> int:
    for name, measure, limit in (
        ("registry refused (timeout 2 s)", registry_refused, 2.0),
        ("registry blackholed (timeout 1 s)", registry_blackholed, 1.0),
        ("deploy hook killed (timeout 1 s)", hook_timeout, 1.0),
    ):
        seconds = measure()
        print(f"{name:36s} {seconds:6.2f} s  (configured {limit:g} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
