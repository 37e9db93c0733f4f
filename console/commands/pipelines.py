"""`pipelines`: each `[[pipelines]]` table's runs read from MLflow once and judged by its rules."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from mlops_console.commands.common import EXIT_FAILED, EXIT_OK, config_option, settings_from
from mlops_console.config import ConfigError
from mlops_console.core import formatting
from mlops_console.core.pipelines import PipelineSnapshot
from mlops_console.core.text import printable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("pipelines", help="read every pipeline's MLflow runs once and judge them")
    config_option(parser)
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=cmd_pipelines)


def pipeline_json(pipeline: PipelineSnapshot) -> dict[str, Any]:
    """One pipeline for `pipelines --json` and `status --json` (`kind` tells it from an endpoint; `model`
    and `alias` are null, so a script that selects endpoints by model skips pipelines)."""
    return {"kind": "pipeline", "model": None, "alias": None, **pipeline.to_dict()}


def read_pipelines(settings: Any) -> tuple[tuple[PipelineSnapshot, ...], str]:
    from mlops_console.core.pipelines import PipelineWatch

    watch = PipelineWatch(settings)
    asyncio.run(watch.read(watch.pipelines))
    return watch.snapshot(), watch.state


def pipelines_table(pipelines: Sequence[PipelineSnapshot], now: float) -> str:
    rows: list[tuple[str, ...]] = [("PIPELINE", "HEALTH", "LAST RUN", "AGE", "TOOK", "NEXT DUE", "STATE")]
    for p in pipelines:
        last = p.last_run
        due = p.next_due
        cells = (
            p.name,
            p.health,
            last.status if last else "-",
            formatting.age(last.start, now) if last and last.start else "-",
            formatting.age(0.0, last.duration) if last and last.duration is not None else "-",
            ("in " + formatting.age(now, due) if due > now else formatting.age(due, now) + " ago")
            if due is not None
            else "-",
            p.state[:120],
        )
        # Names, statuses and error texts come from MLflow and the config: shown escaped.
        rows.append(tuple(printable(cell) for cell in cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1] for r in rows
    ).rstrip()


def verdict_lines(pipelines: Sequence[PipelineSnapshot]) -> list[str]:
    """One line per rule that holds: the pipeline, the rule and why."""
    return [
        f"{printable(p.name)}: {v.rule}{':' + printable(v.metric) if v.metric else ''}: {printable(v.detail)}"
        for p in pipelines
        for v in p.verdicts
        if v.active
    ]


def cmd_pipelines(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if not settings.pipelines:
        raise ConfigError(settings.source, ["pipelines: no [[pipelines]] configured"])
    pipelines, state = read_pipelines(settings)
    if args.json:
        print(json.dumps({"registry": state, "pipelines": [pipeline_json(p) for p in pipelines]}, indent=2))
    else:
        print(pipelines_table(pipelines, time.time()))
        lines = verdict_lines(pipelines)
        if lines:
            print("\n" + "\n".join(lines))
        if state != "ok":
            print(f"\n{printable(state)}")
    fine = state == "ok" and all(p.health == "up" for p in pipelines)
    return EXIT_OK if fine else EXIT_FAILED
