"""Deterministic sample data: a snapshot, a populated store and an in-memory registry.

Used by the TUI's tests and snapshot tests, and by `scripts/screenshots.py --sample` when no demo
environment is running. Times are relative to a fixed clock (`T0`, in 2100 so silences stay in force).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from mlops_console.config import Settings, parse_settings
from mlops_console.core.pipelines import PipelineSnapshot, Verdict
from mlops_console.core.quality.snapshot import FeatureScore, QualitySnapshot
from mlops_console.core.registry import ModelInfo, RunInfo, VersionInfo
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot, ProbeError
from mlops_console.core.store import NewAlert, Store
from mlops_console.tui.host import HostSample, ProcSample

T0 = 4_102_444_800.0  # 2100-01-01T00:00:00Z
EVIL = "[bold red]evil[/] \x1b[31mred\x1b[0m"


def clock() -> float:
    return T0


def settings(store_path: Path, tracking_uri: str | None = None, deploy: bool = True) -> Settings:
    endpoints = [
        {
            "name": "iris-prod",
            "url": "http://127.0.0.1:5101",
            "model": "iris",
            "alias": "production",
            "deploy": {"command": "true"},
        },
        {"name": "iris-staging", "url": "http://127.0.0.1:5102", "model": "iris", "alias": "staging"},
        {"name": "diabetes-prod", "url": "http://127.0.0.1:5103", "model": "diabetes", "alias": "production"},
        {"name": "fraud-scorer", "url": "http://10.0.0.7:8080", "adapter": "generic"},
        {"name": "ranker-canary", "url": "http://10.0.0.8:8080", "adapter": "generic"},
        {"name": "[red]markup-ep", "url": "http://10.0.0.9:8080", "adapter": "generic"},
    ]
    data: dict[str, Any] = {"store": {"path": str(store_path)}, "endpoints": endpoints}
    if tracking_uri:
        data["registry"] = {"tracking_uri": tracking_uri}
    return parse_settings(data)


def _history(base: float, n: int = 30, wobble: float = 0.2) -> list[float]:
    return [base * (1 + wobble * ((i * 7919) % 13 - 6) / 6) for i in range(n)]


def _bins(shares: list[float], current: list[int], start: float, step: float) -> tuple:  # type: ignore[type-arg]
    edges = [start + step * i for i in range(len(shares) - 1)]
    labels = [
        f"<= {edges[0]:.4g}",
        *(f"{a:.4g} .. {b:.4g}" for a, b in itertools.pairwise(edges)),
        f"> {edges[-1]:.4g}",
    ]
    return tuple(zip(labels, shares, current, strict=True))


def quality(at: float = T0) -> QualitySnapshot:
    """iris-prod v2 under the demo's "shifted inputs": three features drift, one holds."""
    tenth = [0.1] * 10

    def feature(
        name: str, verdict: str, score: float, psi: float, ks: float, current: list[int]
    ) -> FeatureScore:
        trend = tuple(round(score * (0.2 + 0.8 * i / 30) * (1.1 if i % 3 else 0.9), 4) for i in range(1, 31))
        return FeatureScore(
            name,
            "numeric",
            verdict,
            score,
            psi,
            0.0603,
            ks,
            1500,
            601,
            0,
            _bins(tenth, current, 4.5, 0.4),
            trend,
        )

    return QualitySnapshot(
        log="/var/log/iris/inferences.jsonl",
        evaluated_at=at - 4,
        model="iris",
        version="2",
        window=900.0,
        rows=601,
        reference="first 1500 rows of version 2 (2099-12-31T22:10:02.114Z to 2099-12-31T22:51:40.873Z)",
        features=(
            feature("petal_length", "drift", 1.75, 4.38, 0.63, [0, 0, 0, 0, 12, 30, 61, 98, 160, 240]),
            feature("petal_width", "drift", 1.49, 3.67, 0.56, [0, 0, 0, 3, 20, 40, 80, 110, 150, 198]),
            feature("sepal_width", "drift", 0.983, 0.865, 0.43, [140, 120, 90, 80, 60, 40, 30, 20, 12, 9]),
            feature(EVIL, "ok", 0.0552, 0.0282, 0.05, [60, 61, 58, 62, 59, 60, 61, 60, 60, 60]),
        ),
        predictions=(
            FeatureScore(
                "prediction",
                "categorical",
                "drift",
                0.41,
                1.2,
                0.02,
                None,
                1500,
                601,
                0,
                (("0", 0.33, 2), ("1", 0.34, 204), ("2", 0.33, 395)),
            ),
        ),
        drifted=("petal_length", "petal_width", "sepal_width"),
        drift_share=0.75,
        dataset_share=0.5,
        input_rows=601,
        broken_rows=12,
        input_problems="petal_width null in 12 rows",
        signature="MLmodel of iris v2",
        prediction_rows=601,
        invalid_rows=0,
        longest_run=19,
        mix=(("2", 0.66), ("1", 0.34)),
    )


def snapshot(at: float = T0) -> EngineSnapshot:
    endpoints = [
        EndpointSnapshot(
            "iris-prod",
            "http://127.0.0.1:5101",
            "mlflow",
            model="iris",
            alias="production",
            health="up",
            expected_version="3",
            served_version="2",
            p50=0.0042,
            p95=0.0091,
            p99=0.0153,
            latency_source="metrics",
            rps=41.7,
            rps_5m=39.2,
            error_ratio=0.0,
            latency_history=_history(0.0042),
            rps_history=_history(40, wobble=0.1),
            last_ok_at=at - 2,
            last_probe_at=at - 2,
            probes=720,
            firing=["version_mismatch", "feature_drift"],
            quality=quality(at),
        ),
        EndpointSnapshot(
            "iris-staging",
            "http://127.0.0.1:5102",
            "mlflow",
            model="iris",
            alias="staging",
            health="up",
            expected_version="3",
            served_version="3",
            p50=0.0039,
            p95=0.0080,
            p99=0.0112,
            latency_source="probe",
            rps=None,
            error_ratio=0.0,
            latency_history=_history(0.0039),
            last_ok_at=at - 4,
            last_probe_at=at - 4,
            probes=710,
            firing=["latency_p95 (pending)"],
        ),
        EndpointSnapshot(
            "diabetes-prod",
            "http://127.0.0.1:5103",
            "mlflow",
            model="diabetes",
            alias="production",
            health="degraded",
            expected_version="1",
            served_version="1",
            p50=0.182,
            p95=0.611,
            p99=1.42,
            latency_source="metrics",
            rps=12.3,
            rps_5m=15.0,
            error_ratio=0.021,
            latency_history=_history(0.2, wobble=0.6),
            last_ok_at=at - 3,
            last_probe_at=at - 3,
            probes=700,
            failures=9,
            firing=["latency_p95"],
            recent_errors=[ProbeError(at - 300, "timeout after 2.0s", None)],
        ),
        EndpointSnapshot(
            "fraud-scorer",
            "http://10.0.0.7:8080",
            "generic",
            health="down",
            p50=None,
            latency_source="none",
            error_ratio=1.0,
            last_ok_at=at - 1260,
            last_probe_at=at - 5,
            last_error="HTTP 503",
            consecutive_failures=252,
            probes=800,
            failures=260,
            firing=["down"],
            recent_errors=[
                ProbeError(at - 65, "connection refused", None),
                ProbeError(at - 5, f"HTTP 503: {EVIL} upstream unavailable", 503),
            ],
        ),
        EndpointSnapshot("ranker-canary", "http://10.0.0.8:8080", "generic", health="unknown"),
        EndpointSnapshot(
            "[red]markup-ep",
            "http://10.0.0.9:8080",
            "generic",
            model=EVIL,
            alias="prod",
            health="up",
            p50=0.021,
            p95=0.034,
            p99=0.05,
            latency_source="probe",
            error_ratio=0.0,
            latency_history=_history(0.021),
            last_ok_at=at - 1,
            last_probe_at=at - 1,
            probes=20,
        ),
    ]
    return EngineSnapshot(
        at=at,
        endpoints=endpoints,
        registry="ok",
        owner="this process",
        pipelines=pipelines(at),
        pipelines_state="ok",
    )


def snapshot_with(*extra: EndpointSnapshot) -> EngineSnapshot:
    """`snapshot()` with `extra` endpoints after its own."""
    base = snapshot()
    return dataclasses.replace(base, endpoints=(*base.endpoints, *extra))


def pipelines(at: float = T0) -> tuple[PipelineSnapshot, ...]:
    """A nightly training job that failed last night, and an hourly scoring job whose last run
    processed a tenth of its usual rows (its name carries markup and an escape code)."""
    ui = "http://mlflow.example:5000/#/experiments/{experiment_id}/runs/{run_id}"

    def run(i: int, status: str, start: float, took: float | None, **metrics: float) -> RunInfo:
        end = start + took if took is not None else None
        return RunInfo(f"run{i:02d}", status, start, end, tuple(sorted(metrics.items())), None, "7")

    nightly = [
        run(i, "FINISHED", at - i * 86400 + 3600, 3300 + 120 * (i % 3), val_accuracy=0.91 + 0.004 * (i % 3))
        for i in range(1, 9)
    ]
    nightly.insert(0, run(0, "FAILED", at - 5 * 3600, 840))
    hourly = [
        run(i, "FINISHED", at - i * 3600 - 300, 290 + 15 * (i % 4), rows_processed=10_000 + 150 * (i % 5))
        for i in range(1, 12)
    ]
    hourly.insert(0, run(0, "FINISHED", at - 600, 70, rows_processed=1040))
    failed = "latest run run00 of nightly-train ended FAILED 4h ago"
    low = "hourly scoring rows_processed fell to 1040 in run run00 (usually 1.015e+04)"
    return (
        PipelineSnapshot(
            "nightly-train",
            "iris-training",
            86400,
            88200,
            "ok",
            at - 2,
            tuple(nightly),
            (("val_accuracy", "drop"),),
            (
                Verdict("pipeline_late", False, "last successful run ended 22h ago"),
                Verdict("pipeline_failed", True, failed),
            ),
            ("pipeline_failed",),
            ui,
        ),
        PipelineSnapshot(
            EVIL + " scoring",
            "scoring",
            3600,
            3960,
            "ok",
            at - 2,
            tuple(hourly),
            (("rows_processed", "drop"),),
            (Verdict("run_metric", True, low, "rows_processed"),),
            ("run_metric:rows_processed",),
            None,
        ),
    )


def host_sample(_endpoints: list[tuple[str, str]] | None = None) -> HostSample:
    return HostSample(
        cpu=23.0,
        mem_percent=61.5,
        mem_used=10_200_000_000,
        mem_total=16_600_000_000,
        load=(0.72, 0.55, 0.41),
        procs=[
            ProcSample("iris-prod", 4242, "python3", 3.1, 412_000_000),
            ProcSample("iris-staging", 4243, "python3", 1.2, 398_000_000),
        ],
    )


def populate_store(store: Store, at: float = T0) -> dict[str, int]:
    """Alerts in every state with events and deliveries, and an audit trail. Returns alert ids by name."""
    ids: dict[str, int] = {}

    def alert(
        name: str,
        rule: str,
        endpoint: str,
        severity: str,
        summary: str,
        started: float,
        model: str | None = None,
        version: str | None = None,
        value: float | None = None,
        threshold: float | None = None,
    ) -> int:
        alert_id = store.open_alert(
            NewAlert(
                fingerprint=f"{rule}/{endpoint}",
                rule=rule,
                endpoint=endpoint,
                model=model,
                version=version,
                severity=severity,
                summary=summary,
                value=value,
                threshold=threshold,
                started_at=started,
            ),
            [],
        )
        ids[name] = alert_id
        return alert_id

    def event(
        alert_id: int,
        kind: str,
        when: float,
        actor: str | None = None,
        note: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        store.add_event(alert_id, kind, actor=actor, note=note, data=data, at=when)

    # a promote of iris 5 minutes before the mismatch alert
    store.add_audit(
        actor="alice@ops",
        action="promote",
        result="ok",
        model="iris",
        alias="production",
        from_version="2",
        to_version="3",
        reason="v3 beats v2 on accuracy",
        at=at - 900,
    )
    store.add_audit(
        actor="bob@ops",
        action="rollback",
        result="ok",
        model="diabetes",
        alias="production",
        from_version="2",
        to_version="1",
        reason="latency regression",
        at=at - 86_400,
    )
    down = alert(
        "down", "down", "fraud-scorer", "critical", f"fraud-scorer is down: HTTP 503 {EVIL}", at - 1200
    )
    event(down, "notified", at - 1195, "slack://…/T0/B1", data={"kind": "fired", "attempt": 1})
    event(
        down,
        "notify_failed",
        at - 1194,
        "pagerduty://…",
        "HTTP 500 from PagerDuty",
        {"kind": "fired", "attempt": 1},
    )
    event(down, "notified", at - 1130, "pagerduty://…", data={"kind": "fired", "attempt": 2})
    mismatch = alert(
        "mismatch",
        "version_mismatch",
        "iris-prod",
        "warning",
        "iris-prod serves v2 but production points to v3",
        at - 600,
        model="iris",
        version="3",
    )
    event(mismatch, "notified", at - 598, "slack://…/T0/B1", data={"kind": "fired", "attempt": 1})
    latency = alert(
        "latency",
        "latency_p95",
        "diabetes-prod",
        "warning",
        "p95 611ms over 500ms for 5m",
        at - 2400,
        model="diabetes",
        version="1",
        value=0.611,
        threshold=0.5,
    )
    with store.write() as db:
        db.execute(
            "UPDATE alerts SET state='acknowledged', acked_by='carol@ops', acked_at=?, ack_note=? WHERE id=?",
            [at - 2000, "known: batch job on the same host", latency],
        )
    event(latency, "acknowledged", at - 2000, "carol@ops", "known: batch job on the same host")
    errors = alert(
        "errors",
        "error_ratio",
        "ranker-canary",
        "info",
        "error ratio 6% over 5%",
        at - 5000,
        value=0.06,
        threshold=0.05,
    )
    with store.write() as db:
        db.execute(
            "UPDATE alerts SET silenced_until=?, silenced_by='dave@ops' WHERE id=?", [at + 3600, errors]
        )
    event(errors, "silenced", at - 4900, "dave@ops", "canary, expected", {"until": at + 3600})
    old = alert(
        "resolved",
        "down",
        "iris-staging",
        "critical",
        "iris-staging is down: connection refused",
        at - 90_000,
    )
    store.resolve_alert(old, [], at=at - 89_000)
    store.add_audit(
        actor="carol@ops",
        action="ack",
        result="ok",
        model="diabetes",
        reason="known: batch job",
        alert_id=latency,
        endpoint="diabetes-prod",
        at=at - 2000,
    )
    store.add_audit(
        actor="dave@ops",
        action="silence",
        result="ok",
        reason="canary, expected",
        alert_id=errors,
        endpoint="ranker-canary",
        at=at - 4900,
    )
    return ids


def make_app(
    root: Path, *, registry: Any = None, tracking_uri: str | None = None, deploy: bool = True, **kwargs: Any
) -> Any:
    """A console over sample data in `root`: populated store, fixed clock, fixed host sample, no polling."""
    store = Store(root / "console.db")
    populate_store(store)
    if registry is None and tracking_uri is None:
        registry = SampleRegistry()
    return console_over(store, settings(root / "console.db", tracking_uri, deploy), registry, **kwargs)


def console_over(store: Store, settings: Any, registry: Any, **kwargs: Any) -> Any:
    """A console over `store` with `settings`: the sample snapshot, fixed clock and host sample, no
    polling, unless `kwargs` say otherwise."""
    from mlops_console.tui.app import MlopsConsole
    from mlops_console.tui.sources import StaticSource

    kwargs.setdefault("snapshot_source", StaticSource(snapshot()))
    kwargs.setdefault("clock", clock)
    kwargs.setdefault("host_sampler", host_sample)
    kwargs.setdefault("poll", False)
    kwargs.setdefault("actor", "tester@console")
    return MlopsConsole(settings, store=store, registry=registry, **kwargs)


# -- an in-memory registry with the RegistryClient's read interface ------------------------------------
class SampleRegistry:
    def __init__(self, at: float = T0) -> None:
        def v(
            model: str, n: int, aliases: list[str], metrics: dict[str, float], status: str = "READY"
        ) -> VersionInfo:
            return VersionInfo(
                model,
                str(n),
                status,
                aliases,
                None,
                {},
                at - 86_400 * (10 - n),
                f"run{model}{n}",
                None,
                metrics,
            )

        self.data = {
            "iris": [
                v("iris", 3, ["production", "staging"], {"accuracy": 0.89, "f1": 0.88, "log_loss": 0.31}),
                v("iris", 2, [], {"accuracy": 0.91, "f1": 0.9, "log_loss": 0.33}),
                v("iris", 1, [], {"accuracy": 0.82, "f1": 0.8, "log_loss": 0.45}),
            ],
            "diabetes": [
                v("diabetes", 2, ["staging"], {"r2": 0.47, "rmse": 53.1}),
                v("diabetes", 1, ["production"], {"r2": 0.44, "rmse": 55.0}),
            ],
            EVIL: [v(EVIL, 1, [], {"auc": 0.5}, status="FAILED_REGISTRATION")],
        }

    def list_models(self, max_results: int = 1000) -> list[ModelInfo]:
        return [self.get_model(name) for name in sorted(self.data)]

    def get_model(self, name: str) -> ModelInfo:
        aliases = {a: ver.version for ver in self.data[name] for a in ver.aliases}
        return ModelInfo(name, aliases, [self.data[name][0].version], None, {}, None)

    def alias_version(self, model: str, alias: str) -> str | None:
        return self.get_model(model).aliases.get(alias)

    def versions(self, name: str, max_results: int = 50, **_: Any) -> list[VersionInfo]:
        return self.data[name][:max_results]

    def version(self, name: str, version: str | int, with_metrics: bool = True) -> VersionInfo:
        return next(v for v in self.data[name] if v.version == str(version))
