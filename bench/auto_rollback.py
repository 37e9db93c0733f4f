"""Automatic rollback in the demo: from the first failing probe of a bad release to the verified rollback.

    .venv/bin/python -m bench.auto_rollback [--runs 3]

Starts the demo environment (its registry, three real `mlops-console serve` endpoints, traffic) in a
temporary directory, runs the engine on its config as the console does, marks iris-prod's next release
bad (`chaos: bad_release iris-prod`: the server fails half its requests), promotes iris v3 through the
same path as the console's dialog (redeploy, verify), and waits for the automatic rollback to v2.

Per run: detection (first failing probe -> the alert fired), decision (alert -> rollback row), the
registry call, the redeploy hook, its verification, the total from the first failing probe to the
verified rollback, and to the page's delivery. Each run promotes again (the alias is back on v2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from mlops_console.config import load_settings
from mlops_console.core.adapters import ProbeResult
from mlops_console.core.engine_thread import EngineThread
from mlops_console.core.promotion import Promoter
from mlops_console.core.registry import RegistryClient
from mlops_console.core.store import Store
from mlops_console.demo.environment import DemoEnvironment
from mlops_console.demo.registry import build_registry


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def one_run(env: DemoEnvironment, engine: EngineThread, store: Store, promoter: Promoter) -> dict[str, float]:
    failures: list[float] = []
    lock = threading.Lock()
    armed = threading.Event()

    def on_probe(name: str, result: ProbeResult) -> None:
        served = engine.engine.endpoints[name].served_version if engine.engine else None
        if name == "iris-prod" and armed.is_set() and not result.ok and served == "3":
            with lock:
                failures.append(time.time())

    assert engine.engine is not None
    engine.engine.on_probe = on_probe
    decided = {d.promote_id for d in store.auto_rollback_decisions()}
    env.bad_release("iris-prod")
    armed.set()
    result = promoter.apply(promoter.plan_promote("iris", "3"), actor="bench", reason="bad release")
    assert result.changed, result.message

    def finished() -> Any:
        for d in store.auto_rollback_decisions():
            if d.promote_id not in decided and d.finished_at:
                return d
        return None

    decision = _wait(finished, 300, "the automatic rollback")
    assert decision.state == "rolled_back", decision
    alert = store.get_alert(decision.alert_id)
    rollback = next(r for r in store.list_audit(model="iris", action="rollback") if r.id == decision.audit_id)
    detail = rollback.detail or {}
    [deploy] = detail["deploys"]
    sent = _wait(
        lambda: store.query(
            "SELECT max(sent_at) AS at FROM notifications WHERE kind='auto_rollback' AND alert_id=?",
            [alert.id],
        )[0]["at"],
        60,
        "the page's delivery",
    )
    with lock:
        first = min(failures)
    return {
        "detection": alert.started_at - first,
        "decision": rollback.at - alert.started_at,
        "registry": detail["registry_seconds"],
        "hook": deploy["hook"]["seconds"],
        "verify": deploy["verify"]["seconds"],
        "to verified": decision.finished_at - first,
        "to page": sent - first,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-auto-rollback-") as tmp:
        root = Path(tmp)
        build_registry(root)
        with DemoEnvironment(root) as env:
            env.start()
            settings = load_settings(env.write_config(root / "demo.toml"))
            store = Store(settings.store.path)
            promoter = Promoter(settings, store, RegistryClient(settings.registry))
            engine = EngineThread(settings, lambda _s: None, store=store)
            engine.start()
            try:
                _wait(
                    lambda: (
                        engine.engine is not None
                        and engine.engine.endpoints["iris-prod"].served_version == "2"
                    ),
                    120,
                    "iris-prod serving v2",
                )
                runs = []
                for number in range(args.runs):
                    figures = one_run(env, engine, store, promoter)
                    runs.append(figures)
                    print(f"run {number + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in figures.items()))
                    _wait(
                        lambda: (
                            engine.engine is not None
                            and engine.engine.endpoints["iris-prod"].served_version == "2"
                            and not store.list_alerts("open", limit=10)
                        ),
                        180,
                        "the alerts to resolve",
                    )
                print(
                    "median: "
                    + ", ".join(f"{k} {statistics.median(r[k] for r in runs):.2f}s" for k in runs[0])
                )
            finally:
                engine.stop(timeout=30)


if __name__ == "__main__":
    main()
