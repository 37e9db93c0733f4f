"""A real Prometheus server for tests: Debian's `prometheus` binary, our own process on a free loopback
port with a temporary data directory and a 1 s scrape interval (never the system service).

Scrape targets come from a file (`file_sd_configs`) the test rewrites, so targets appear and go
without restarting the server; `static` jobs are fixed at start.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests._loopback import free_port

SCRAPE_INTERVAL = 1.0


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class PrometheusServer:
    def __init__(self, root: Path, static: Mapping[str, list[str]]) -> None:
        binary = prometheus_binary()
        assert binary is not None, "the prometheus binary is not installed (apt-get install -y prometheus)"
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets_file = root / "targets.json"
        self.set_targets("models", [])
        jobs = [
            {
                "job_name": "models",
                "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
            }
        ]
        jobs += [
            {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in static.items()
        ]
        config = {
            "global": {"scrape_interval": f"{SCRAPE_INTERVAL:g}s", "evaluation_interval": "1s"},
            "scrape_configs": jobs,
        }
        (root / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self.log = root / "prometheus.log"
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )

    def set_targets(self, job: str, targets: list[str]) -> None:
        groups = [{"targets": targets, "labels": {"job": job}}] if targets else []
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets_file)  # atomically: Prometheus never reads half a file

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready after {timeout}s: {self.log.read_text()[-2000:]}")

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5.0).json()
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
