"""Pipelines: a job's MLflow runs, read by the real engine, page once and resolve once per incident.

The runs live in a real sqlite-backed MLflow tracking store and are created with the times a case
needs (`tests/pipelines_helpers.py`); pages go through apprise to a loopback sink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops_console.config import Settings, parse_settings
from mlops_console.core.conditions import evaluate_pipeline
from mlops_console.core.conditions.pipelines import PipelineReading
from mlops_console.core.engine import Engine
from mlops_console.core.registry import RunInfo
from mlops_console.core.store import Store
from tests._loopback import Sink, async_wait_for
from tests.pipelines_helpers import Job


@pytest.fixture
def job(pipelines_tracking: tuple[str, Any]) -> Job:
    return Job.create(pipelines_tracking[1])


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


def settings_for(tmp_path: Path, uri: str, job: Job, sink: Sink | None = None, **pipeline: Any) -> Settings:
    rules = pipeline.pop("rules", [])
    return parse_settings(
        {
            "store": {"path": str(tmp_path / "console.db")},
            "registry": {"tracking_uri": uri, "timeout": 5},
            "notifications": [{"url": sink.url}] if sink else [],
            "rules": rules,
            "pipelines": [
                {
                    "name": "score",
                    "experiment": job.experiment,
                    "every": "6h",
                    "poll": 0.2,
                    "metrics": {"rows_processed": "drop"},
                    **pipeline,
                }
            ],
        }
    )


class Watching:
    """The real engine watching the pipeline, paging into `sink`."""

    def __init__(self, settings: Settings) -> None:
        self.engine = Engine(settings, Store(settings.store.path))
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watching:
        self.task = asyncio.create_task(self.engine.run(self.stop))
        await async_wait_for(lambda: self.engine.leader, what="the engine leads")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task

    def pipeline(self) -> Any:
        return self.engine.snapshot().pipelines[0]

    async def reads(self, count: int) -> None:
        """Wait until the pipeline has been read (and judged) `count` more times."""
        seen: list[float] = []

        def read() -> bool:
            at = self.pipeline().read_at
            if at is not None and (not seen or seen[-1] != at):
                seen.append(at)
            return len(seen) > count

        await async_wait_for(read, what=f"{count} reads of the pipeline")


def pages(sink: Sink) -> list[str]:
    return sink.titles()


async def _incident(
    tmp_path: Path, uri: str, job: Job, sink: Sink, title: str, fix: Any, **pipeline: Any
) -> None:
    """The pipeline's runs as set up page `title` once; after `fix()`, it resolves once, and nothing
    else is ever paged."""
    async with Watching(settings_for(tmp_path, uri, job, sink, **pipeline)) as watching:
        await async_wait_for(lambda: f"[FIRING] pipeline:score: {title}" in pages(sink), what="the page")
        await watching.reads(3)
        fix()
        await async_wait_for(lambda: f"[RESOLVED] pipeline:score: {title}" in pages(sink), what="the resolve")
        await watching.reads(3)
        assert watching.pipeline().firing == ()
    assert pages(sink) == [f"[FIRING] pipeline:score: {title}", f"[RESOLVED] pipeline:score: {title}"]
    alerts = Store(tmp_path / "console.db").list_alerts()
    assert [(a.endpoint, a.state) for a in alerts] == [("pipeline:score", "resolved")]


async def test_on_time_pipeline_pages_nothing_and_says_why(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history()
    async with Watching(settings_for(tmp_path, pipelines_tracking[0], job, sink)) as watching:
        await watching.reads(3)
        snap = watching.pipeline()
    assert snap.state == "ok" and snap.firing == ()
    assert {v.rule: v.active for v in snap.verdicts} == {
        "pipeline_late": False,
        "pipeline_failed": False,
        "pipeline_stuck": False,
        "pipeline_slow": False,
        "run_metric": False,
    }
    assert len(snap.runs) == 6 and snap.next_due is not None
    assert pages(sink) == []


async def test_late_pipeline_pages_once_and_resolves_on_the_next_successful_run(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history(newest_ended_ago=2 * 3600)
    await _incident(
        tmp_path,
        pipelines_tracking[0],
        job,
        sink,
        "pipeline late",
        lambda: job.run(metrics={"rows_processed": 1000.0}),
        every="1h",
        grace="10m",
    )


async def test_failed_run_pages_once_and_the_next_success_resolves_it(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history()
    job.run("FAILED", ended_ago=60, took=30)
    await _incident(
        tmp_path,
        pipelines_tracking[0],
        job,
        sink,
        "pipeline run failed",
        lambda: job.run(took=30, metrics={"rows_processed": 1005.0}),
    )


async def test_stuck_run_pages_once_and_resolves_when_the_pipeline_moves_on(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history(newest_ended_ago=3 * 3600)
    job.run("RUNNING", took=2 * 3600)  # usual 10 minutes: 3x that is long past
    await _incident(
        tmp_path,
        pipelines_tracking[0],
        job,
        sink,
        "pipeline run stuck",
        lambda: job.run(metrics={"rows_processed": 1005.0}),
    )


async def test_slow_run_pages_once_and_a_usual_run_resolves_it(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history(newest_ended_ago=3600)
    job.run(took=3000, metrics={"rows_processed": 1000.0})
    await _incident(
        tmp_path,
        pipelines_tracking[0],
        job,
        sink,
        "pipeline run slow",
        lambda: job.run(took=610, metrics={"rows_processed": 1000.0}),
    )


async def test_low_volume_run_pages_its_metric_once_and_resolves(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history(newest_ended_ago=3600)
    job.run(metrics={"rows_processed": 100.0})
    await _incident(
        tmp_path,
        pipelines_tracking[0],
        job,
        sink,
        "pipeline run metric off its usual",
        lambda: job.run(metrics={"rows_processed": 990.0}),
    )
    assert "Metric: rows_processed" in sink.received[0]["message"]
    assert "rows_processed fell to 100" in sink.received[0]["message"]


def _runs(*specs: tuple[str, float, float, float]) -> tuple[RunInfo, ...]:
    """(status, start, end, rows) oldest first in, newest start first out (as MLflow answers)."""
    out = [
        RunInfo(f"r{i}", status, start, end if status != "RUNNING" else None, (("rows", rows),))
        for i, (status, start, end, rows) in enumerate(specs)
    ]
    return tuple(sorted(out, key=lambda r: -(r.start or 0.0)))


def _verdicts(runs: tuple[RunInfo, ...], now: float, **pipeline: Any) -> dict[str, bool | None]:
    settings = parse_settings(
        {
            "registry": {"tracking_uri": "sqlite:///unused.db"},
            "pipelines": [{"name": "p", "experiment": "e", "every": "1h", **pipeline}],
        }
    )
    reading = PipelineReading(settings.pipelines[0], runs, now, watching_since=now)
    return {c.rule: c.active for c in evaluate_pipeline(settings, reading)}


def _usual(count: int = 6, rows: float = 1000.0) -> list[tuple[str, float, float, float]]:
    return [
        ("FINISHED", i * 3600.0, i * 3600.0 + 600 + 10 * (i % 3), rows + 10 * (i % 3)) for i in range(count)
    ]


def test_late_counts_from_the_last_success_and_waits_out_the_grace() -> None:
    runs = _runs(*_usual())  # the last one ended at 5 h + 620 s
    ended = 5 * 3600.0 + 620
    assert _verdicts(runs, ended + 3600 + 20 * 60, grace="30m")["pipeline_late"] is False
    assert _verdicts(runs, ended + 3600 + 31 * 60, grace="30m")["pipeline_late"] is True
    # Default grace: a tenth of `every`.
    assert _verdicts(runs, ended + 3600 + 5 * 60)["pipeline_late"] is False
    assert _verdicts(runs, ended + 3600 + 7 * 60)["pipeline_late"] is True
    # A failed run is no successful run: still late.
    failed = _runs(*_usual(), ("FAILED", ended + 3000, ended + 3100, 0.0))
    assert _verdicts(failed, ended + 3600 + 7 * 60)["pipeline_late"] is True


def test_metrics_page_only_in_their_bad_direction() -> None:
    history = _usual()
    low = _runs(*history, ("FINISHED", 7 * 3600.0, 7 * 3600.0 + 600, 100.0))
    high = _runs(*history, ("FINISHED", 7 * 3600.0, 7 * 3600.0 + 600, 5000.0))
    now = 7 * 3600.0 + 700
    assert _verdicts(low, now, metrics={"rows": "drop"})["run_metric"] is True
    assert _verdicts(high, now, metrics={"rows": "drop"})["run_metric"] is False
    assert _verdicts(high, now, metrics={"rows": "rise"})["run_metric"] is True
    assert _verdicts(low, now, metrics={"rows": "rise"})["run_metric"] is False
    # Too little history says nothing either way.
    short = _runs(*history[:3], ("FINISHED", 7 * 3600.0, 7 * 3600.0 + 600, 100.0))
    assert _verdicts(short, now, metrics={"rows": "drop"})["run_metric"] is None


def test_slow_stuck_and_failed_judge_the_right_runs() -> None:
    history = _usual()
    now = 7 * 3600.0
    quick = _runs(*history, ("FINISHED", now - 200, now - 100, 1000.0))
    assert _verdicts(quick, now)["pipeline_slow"] is False, "faster than usual is not slow"
    slow = _runs(*history, ("FINISHED", now - 3100, now - 100, 1000.0))
    assert _verdicts(slow, now)["pipeline_slow"] is True
    assert (
        _verdicts(_runs(*history, ("FINISHED", now - 800, now - 100, 1000.0)), now, max_duration="5m")[
            "pipeline_slow"
        ]
        is True
    ), "over max_duration is slow whatever the history"
    running = _runs(*history, ("RUNNING", now - 1500, 0.0, 0.0))
    assert _verdicts(running, now)["pipeline_stuck"] is False, "25 min is under 3 x 10 min"
    assert _verdicts(running, now, max_duration="20m")["pipeline_stuck"] is True
    assert _verdicts(_runs(*history, ("RUNNING", now - 2000, 0.0, 0.0)), now)["pipeline_stuck"] is True
    killed = _runs(*history, ("KILLED", now - 300, now - 200, 0.0))
    assert _verdicts(killed, now)["pipeline_failed"] is True
    # A failure followed by a success is over; a run started after the failure does not clear it.
    assert (
        _verdicts(
            _runs(
                *history, ("FAILED", now - 900, now - 800, 0.0), ("FINISHED", now - 700, now - 100, 1000.0)
            ),
            now,
        )["pipeline_failed"]
        is False
    )
    assert (
        _verdicts(
            _runs(*history, ("FAILED", now - 900, now - 800, 0.0), ("RUNNING", now - 100, 0.0, 0.0)), now
        )["pipeline_failed"]
        is True
    )


async def test_restarted_watcher_adopts_the_pipeline_alert_without_paging_again(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, sink: Sink
) -> None:
    job.history()
    job.run("FAILED", ended_ago=60, took=30)
    settings = settings_for(tmp_path, pipelines_tracking[0], job, sink)
    title = "pipeline:score: pipeline run failed"
    async with Watching(settings):
        await async_wait_for(lambda: pages(sink) == [f"[FIRING] {title}"], what="the page")
    async with Watching(settings) as second:
        await second.reads(5)
        assert second.pipeline().firing == ("pipeline_failed",)
        assert pages(sink) == [f"[FIRING] {title}"], "the restart paged again"
        job.run(took=30, metrics={"rows_processed": 1000.0})
        await async_wait_for(lambda: f"[RESOLVED] {title}" in pages(sink), what="the resolve")
    assert pages(sink) == [f"[FIRING] {title}", f"[RESOLVED] {title}"]


def test_bad_pipeline_config_exits_2_naming_the_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlops_console.cli import main

    config = tmp_path / "console.toml"
    config.write_text(
        '[registry]\ntracking_uri = "sqlite:///x.db"\n\n'
        '[[pipelines]]\nname = "nightly"\nexperiment = "train"\nevery = "daily"\n'
        'metrics = { rows_processed = "down" }\n\n'
        '[[pipelines]]\nname = "hourly"\nevery = "1h"\n'
    )
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: pipelines[0].every: expected a duration" in err
    assert f"{config}: pipelines[0].metrics.rows_processed: Input should be 'drop' or 'rise'" in err
    assert f"{config}: pipelines[1]: set exactly one of `experiment` (a name) or `experiment_id`" in err
    config.write_text(
        '[[pipelines]]\nname = "a"\nexperiment = "e"\nevery = "1h"\n\n'
        '[[pipelines]]\nname = "a"\nexperiment_id = "3"\nevery = "1h"\n\n'
        '[[rules]]\nrule = "pipeline_late"\nendpoint = "b*"\n'
    )
    assert main(["--config", str(config), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: pipelines[1].name: duplicate pipeline name 'a'" in err
    assert (
        f"{config}: pipelines: their runs are read from MLflow, and registry.tracking_uri is not set" in err
    )
    assert f"{config}: rules[0].endpoint: 'b*' matches no pipeline" in err


async def test_mlflow_server_going_away_is_one_state_and_no_page_even_past_the_deadline(
    tmp_path: Path, sink: Sink
) -> None:
    """The job keeps logging (straight into the store the server serves) while the server answers
    nothing (stopped: every read times out): the console sees one "registry unreachable" state, pages
    nothing, and once the server answers again judges the runs it can read, so the outage does not
    pass for a late pipeline."""
    import contextlib
    import os
    import signal
    import sqlite3
    import threading

    from mlflow import MlflowClient

    from tests.fixtures_mlflow import MlflowRegistry, start_mlflow_server, stop_process_group

    root = tmp_path / "mlflow"
    root.mkdir()
    registry = MlflowRegistry(root=root, db_path=root / "mlflow.db")
    job = Job.create(MlflowClient(tracking_uri=registry.tracking_uri))
    # The server is stopped at any moment, perhaps in the middle of a read: with SQLite's rollback
    # journal its read lock would then hold the job's writes until it is continued, and the pipeline
    # would rightly be late after the outage. In WAL mode a reader stops no writer.
    with contextlib.closing(sqlite3.connect(registry.db_path)) as db:
        assert db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    job.history(newest_ended_ago=2, spacing=1, count=6)
    url, server = start_mlflow_server(registry)
    stop_job = threading.Event()
    logged = threading.Event()

    def keep_running() -> None:  # the pipeline's own schedule: a successful run every second
        while not stop_job.is_set():
            job.run(took=0.2, metrics={"rows_processed": 1000.0})
            logged.set()
            stop_job.wait(1.0)

    runner = threading.Thread(target=keep_running, daemon=True)
    runner.start()
    # The history ended before the server's start (seconds on a loaded machine): the engine's first
    # read must already see a fresh run, or the pipeline is rightly late before the outage begins.
    await async_wait_for(logged.is_set, what="the job's first run")
    settings = settings_for(tmp_path, url, job, sink, every="4s", grace="2s", poll=0.5)
    settings.registry.timeout = 2.0
    try:
        async with Watching(settings) as watching:
            await async_wait_for(
                lambda: (
                    watching.engine.snapshot().pipelines_state == "ok" and watching.pipeline().health == "up"
                ),
                what="the pipeline read and up",
            )
            assert pages(sink) == []
            os.killpg(server.pid, signal.SIGSTOP)
            down_at = time.time()
            await async_wait_for(
                lambda: watching.engine.snapshot().pipelines_state.startswith("registry unreachable"),
                what="the unreachable state",
            )
            assert watching.pipeline().state.startswith("registry unreachable")
            # Gone for longer than `every + grace` (6 s): a reader that took "could not read" for "no
            # run" would page late now, and resolve once the server is back.
            await async_wait_for(lambda: time.time() - down_at > 8.0, what="a long outage")
            assert pages(sink) == []
            os.killpg(server.pid, signal.SIGCONT)
            await async_wait_for(
                lambda: watching.engine.snapshot().pipelines_state == "ok", timeout=60, what="recovery"
            )
            await watching.reads(3)
            assert watching.pipeline().health == "up" and watching.pipeline().state == "ok"
        assert pages(sink) == []
        assert Store(tmp_path / "console.db").list_alerts() == []
    finally:
        stop_job.set()
        runner.join(timeout=10)
        os.killpg(server.pid, signal.SIGCONT)
        stop_process_group(server)


def _cli_config(tmp_path: Path, uri: str, job: Job) -> Path:
    config = tmp_path / "console.toml"
    config.write_text(
        f'[registry]\ntracking_uri = "{uri}"\ntimeout = 2\n\n[store]\npath = "{tmp_path / "c.db"}"\n\n'
        f'[[pipelines]]\nname = "score\\u001b[31m"\nexperiment = "{job.experiment}"\nevery = "1h"\n'
        'metrics = { rows_processed = "drop" }\n'
    )
    return config


def test_pipelines_command_and_status_json_show_a_late_pipeline(
    tmp_path: Path, pipelines_tracking: tuple[str, Any], job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlops_console.cli import main

    job.history(newest_ended_ago=2 * 3600)
    config = _cli_config(tmp_path, pipelines_tracking[0], job)
    assert main(["--config", str(config), "pipelines", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["registry"] == "ok"
    (pipeline,) = doc["pipelines"]
    assert (pipeline["kind"], pipeline["name"], pipeline["health"]) == ("pipeline", "score\x1b[31m", "down")
    assert [v["rule"] for v in pipeline["verdicts"] if v["active"]] == ["pipeline_late"]
    assert pipeline["last_run"]["status"] == "FINISHED" and len(pipeline["runs"]) == 6
    assert pipeline["runs"][0]["metrics"] == {"rows_processed": 1000.0}

    assert main(["--config", str(config), "pipelines"]) == 1
    text = capsys.readouterr().out
    assert "\x1b" not in text, "an escape code from the config reached the terminal"
    assert "down" in text and "pipeline_late: last successful run of score" in text

    assert main(["--config", str(config), "status", "--json"]) == 0  # no endpoint is down
    entries = json.loads(capsys.readouterr().out)
    assert [(e["kind"], e["health"], e["model"]) for e in entries] == [("pipeline", "down", None)]

    job.run(took=590, metrics={"rows_processed": 1000.0})
    assert main(["--config", str(config), "pipelines"]) == 0
    assert "up" in capsys.readouterr().out


def test_pipelines_command_says_the_registry_is_unreachable(
    tmp_path: Path, job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlops_console.cli import main
    from tests._loopback import free_port

    config = _cli_config(tmp_path, f"http://127.0.0.1:{free_port()}", job)
    assert main(["--config", str(config), "pipelines", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["registry"].startswith("registry unreachable")
    assert [(p["health"], p["state"]) for p in doc["pipelines"]] == [("unknown", doc["registry"])]
