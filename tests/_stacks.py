"""Real serving stacks on loopback for the adapter tests: MLServer and BentoML, each run from its own
cached virtual environment (`tests/serving_envs.py`), serving a small scikit-learn model trained in
that environment. Servers run in their own process group; `kill()` is SIGKILL, `stop()` SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.core.store.rows import Alert
from tests._serve_helpers import free_port, poll_until
from tests.serving_envs import bin_path

TRAIN = """
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(C=float(sys.argv[2]), max_iter=500).fit(X, y), sys.argv[1])
"""


def train(stack: str, path: Path, c: float) -> Path:
    """A scikit-learn iris classifier pickled by the stack's own scikit-learn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(bin_path(stack, "python")), "-c", TRAIN, str(path), str(c)], check=True, timeout=120)
    return path


def accepts_connections(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Served:
    """One server process (group) with its log."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _spawn(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.starts += 1
        log = self.root / f"server-{self.starts}.log"
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
            )

    @property
    def log(self) -> str:
        return (self.root / f"server-{self.starts}.log").read_text(errors="replace")[-4000:]

    def wait_status(self, path: str, timeout: float = 120.0) -> None:
        def answered() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.url + path, timeout=1.0).status_code == 200
            return False

        poll_until(answered, timeout, f"{self.url}{path}", interval=0.2)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        # BentoML's workers leave the server's process group (each its own session) and go on serving
        # on its socket when only the group is signalled: signal every descendant too.
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.send_signal(sig)
        _, alive = psutil.wait_procs(family, timeout=20)
        for member in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                member.kill()
        psutil.wait_procs(alive, timeout=10)
        process.wait(5)


class MlServer(Served):
    """`mlserver start` on a model folder with one sklearn model, in-process inference
    (`parallel_workers: 0`), metrics on their own port."""

    def __init__(self, root: Path, model: str = "iris") -> None:
        super().__init__(root)
        self.model = model
        self.grpc_port, self.metrics_port = free_port(), free_port()
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"

    def deploy(self, version: str, *, c: float = 1.0, broken: bool = False) -> None:
        """Put `version` of the model in the folder (a file that is no model at all if `broken`)."""
        folder = self.root / "models" / self.model
        folder.mkdir(parents=True, exist_ok=True)
        if broken:
            (folder / "model.joblib").write_bytes(b"this is not a pickle\n")
        else:
            train("mlserver", folder / "model.joblib", c)
        settings = {
            "name": self.model,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": version},
        }
        (folder / "model-settings.json").write_text(json.dumps(settings))
        server = {
            "host": "127.0.0.1",
            "http_port": self.port,
            "grpc_port": self.grpc_port,
            "metrics_port": self.metrics_port,
            "parallel_workers": 0,
        }
        (self.root / "models" / "settings.json").write_text(json.dumps(server))

    def start(self) -> MlServer:
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        self._spawn([str(bin_path("mlserver", "mlserver")), "start", "."], env, self.root / "models")
        return self

    def wait_ready(self, timeout: float = 120.0) -> MlServer:
        self.wait_status(f"/v2/models/{self.model}/ready", timeout)
        return self


SERVICE = textwrap.dedent(
    """
    import os
    import time

    import bentoml
    import joblib


    @bentoml.service
    class Iris:
        def __init__(self) -> None:
            # A slow model load, on demand: BentoML holds requests unanswered meanwhile.
            time.sleep(float(os.environ.get("LOAD_DELAY", "0")))
            self.model = joblib.load(os.path.join(os.path.dirname(__file__), "model.joblib"))

        @bentoml.api
        def predict(self, data: list[list[float]]) -> list[int]:
            return [int(p) for p in self.model.predict(data)]
    """
)


class BentoServer(Served):
    """`bentoml serve iris:VERSION` of a bento built from a one-route service with a sklearn model."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.home = root / "bentoml-home"
        self.metrics_url = f"{self.url}/metrics"
        self.version: str | None = None

    def _env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "BENTOML_HOME": str(self.home),
            "BENTOML_DO_NOT_TRACK": "true",
            "PYTHONWARNINGS": "ignore",
            **extra,
        }

    def build(self, version: str, *, c: float = 1.0) -> None:
        source = self.root / f"source-{version}"
        source.mkdir(parents=True, exist_ok=True)
        (source / "service.py").write_text(SERVICE)
        (source / "bentofile.yaml").write_text(
            'service: "service:Iris"\ninclude:\n  - "service.py"\n  - "model.joblib"\n'
        )
        train("bentoml", source / "model.joblib", c)
        subprocess.run(
            [str(bin_path("bentoml", "bentoml")), "build", "--version", version, "."],
            cwd=source, env=self._env(), check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        self.version = version

    def start(self, *, load_delay: float = 0.0) -> BentoServer:
        assert self.version is not None, "build a bento first"
        cmd = [str(bin_path("bentoml", "bentoml")), "serve", f"iris:{self.version}"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._spawn(cmd, self._env(LOAD_DELAY=str(load_delay)), self.root)
        return self

    def wait_listening(self, timeout: float = 120.0) -> BentoServer:
        """Until its socket accepts connections (which it does before its service has loaded)."""

        def listening() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"bentoml exited with {self.process.returncode}:\n{self.log}")
            return accepts_connections(self.port)

        poll_until(listening, timeout, f"{self.url} accepting connections", interval=0.1)
        return self

    def wait_ready(self, timeout: float = 120.0) -> BentoServer:
        self.wait_status("/readyz", timeout)
        return self


HANDLER = textwrap.dedent(
    """
    import json

    import torch


    class Handler:
        \"\"\"Scores each row with a fixed linear layer (the weights differ per version).\"\"\"

        def initialize(self, context):
            if "broken" in context.manifest["model"]["modelVersion"]:
                raise RuntimeError("this model version does not load")
            self.layer = torch.nn.Linear(2, 1)
            torch.nn.init.constant_(self.layer.weight, 1.0)

        def handle(self, data, context):
            out = []
            for row in data:
                body = row.get("body") or row.get("data")
                if isinstance(body, (bytes, bytearray)):
                    body = json.loads(body)
                with torch.no_grad():
                    scores = self.layer(torch.tensor(body["data"], dtype=torch.float32))
                out.append([round(float(v), 3) for v in scores.flatten()])
            return out


    _service = None


    def handle(data, context):
        global _service
        if _service is None:
            _service = Handler()
            _service.initialize(context)
        return None if data is None else _service.handle(data, context)
    """
)


class TorchServer(Served):
    """`torchserve --foreground` serving one archive (`iris`: a torch handler with a fixed linear
    layer), with the management and metrics APIs on their own ports, metrics in Prometheus mode."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.management_port, self.metrics_port = free_port(), free_port()
        self.management_url = f"http://127.0.0.1:{self.management_port}"
        self.metrics_url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        self.store = root / "store"

    def archive(self, version: str) -> None:
        """Package `version` of the handler as the archive the server loads (`broken` in the version:
        one whose workers fail to start, every time)."""
        self.store.mkdir(parents=True, exist_ok=True)
        (self.root / "handler.py").write_text(HANDLER)
        subprocess.run(
            [str(bin_path("torchserve", "torch-model-archiver")), "--model-name", "iris", "--version",
             version, "--handler", str(self.root / "handler.py"), "--export-path", str(self.store),
             "--force"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        (self.root / "config.properties").write_text(
            f"inference_address=http://127.0.0.1:{self.port}\n"
            f"management_address={self.management_url}\n"
            f"metrics_address=http://127.0.0.1:{self.metrics_port}\n"
            "metrics_mode=prometheus\n"
            "disable_token_authorization=true\n"
            "default_workers_per_model=1\n"
        )

    def start(self) -> TorchServer:
        env = {**os.environ, "PATH": f"{bin_path('torchserve', '')}{os.pathsep}{os.environ.get('PATH', '')}"}
        cmd = [str(bin_path("torchserve", "torchserve")), "--start", "--foreground", "--ncs"]
        cmd += ["--model-store", str(self.store), "--models", "iris=iris.mar"]
        cmd += ["--ts-config", str(self.root / "config.properties")]
        self._spawn(cmd, env, self.root)
        return self

    def wait_ready(self, timeout: float = 180.0) -> TorchServer:
        def worker_ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"torchserve exited with {self.process.returncode}:\n{self.log}")
            with contextlib.suppress(httpx.HTTPError):
                answer = httpx.get(f"{self.management_url}/models/iris", timeout=1.0)
                return answer.status_code == 200 and '"READY"' in answer.text
            return False

        poll_until(worker_ready, timeout, "a READY torchserve worker", interval=0.3)
        return self


def wait_exit(server: Served, timeout: float = 120.0) -> int:
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while server.process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"server still running after {timeout:.0f} s:\n{server.log}")
        time.sleep(0.2)
    return server.process.returncode


class EngineRun:
    """A real engine (store, rules, notifier) in this event loop, watching one endpoint."""

    def __init__(self, tmp_path: Path, endpoint: dict[str, Any], sink_url: str, **config: Any) -> None:
        from mlops_console.config import parse_settings
        from mlops_console.core.engine import Engine
        from mlops_console.core.store import Store

        settings = parse_settings(
            {
                "store": {"path": str(tmp_path / "console.db")},
                "endpoints": [{"name": "ep", "interval": 0.5, "timeout": 2.0, **endpoint}],
                "notifications": [{"url": sink_url}],
                **config,
            }
        )
        self.store = Store(settings.store.path)
        self.engine = Engine(settings, self.store)
        self.stop = asyncio.Event()
        self.healths: list[str] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def snap(self) -> EndpointSnapshot:
        snap = self.engine.snapshot().endpoints[0]
        if not self.healths or self.healths[-1] != snap.health:
            self.healths.append(snap.health)
        return snap

    async def __aenter__(self) -> EngineRun:
        self._task = asyncio.create_task(self.engine.run(self.stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self._task is not None
        await self._task

    async def until(
        self, predicate: Callable[[EndpointSnapshot], Any], what: str, timeout: float = 60.0
    ) -> None:
        """Poll the snapshot (recording each health it passes through) until `predicate` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.snap):
            if time.monotonic() > deadline:
                snap = self.snap
                raise AssertionError(
                    f"timed out after {timeout:.0f} s waiting for {what}; health {snap.health}, "
                    f"served {snap.served_version}, last error {snap.last_error}, healths {self.healths}"
                )
            await asyncio.sleep(0.1)

    async def alerts(self, state: str = "all") -> list[Alert]:
        return await asyncio.to_thread(self.store.list_alerts, state)
