"""`drift ENDPOINT` or `drift --log PATH`: per-feature drift scores, sample sizes and verdicts of an
inference log (a configured endpoint's, with its reference and window, or any log).

The window ends at the log's newest record and covers the newest record's model version (or
`--version`). The reference is a CSV/Parquet/JSON-lines file, an artifact of that version's training
run found through the registry (`artifact:reference.csv`), or, without `--reference`, the version's
first rows in the log. Exit 0 whatever the verdict (scripts and CI gates read `--json`); 1 when the log
or the reference cannot be read; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from mlops_console.commands.common import EXIT_OK, EXIT_USAGE, CommandError, config_option, settings_from
from mlops_console.commands.output import table
from mlops_console.core.limits import json_safe
from mlops_console.core.text import printable

FORMATS = ("jsonl", "csv", "sqlite")


def register(sub: argparse._SubParsersAction) -> None:
    drift = sub.add_parser("drift", help="drift, input-schema and prediction checks of an inference log")
    config_option(drift)
    drift.add_argument(
        "endpoint", nargs="?", metavar="ENDPOINT", help="a configured endpoint: its inference_log and drift"
    )
    drift.add_argument("--log", type=Path, metavar="PATH", help="the inference log (instead of ENDPOINT)")
    drift.add_argument(
        "--format", choices=FORMATS, default=None, help="log format (default: from the suffix)"
    )
    drift.add_argument("--table", help="the table of an SQLite log")
    drift.add_argument(
        "--reference",
        metavar="REF",
        help="CSV/Parquet/JSON-lines file, or artifact:NAME of the version's run (default: its first rows)",
    )
    drift.add_argument("--window", type=_duration, default=None, help="current window (default 15m)")
    drift.add_argument("--version", help="model version to check (default: the newest record's)")
    drift.add_argument(
        "--tracking-uri", help="MLflow registry (default: $MLFLOW_TRACKING_URI, then [registry])"
    )
    drift.add_argument("--json", action="store_true", help="machine-readable output")
    drift.set_defaults(func=cmd_drift)


def _duration(text: str) -> float:
    from mlops_console.config import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < seconds <= 366 * 86400:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration of at most a year")
    return seconds


def _format_of(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = args.log.suffix.lower()
    return {".csv": "csv", ".db": "sqlite", ".sqlite": "sqlite", ".sqlite3": "sqlite"}.get(suffix, "jsonl")


def _tracking_uri(args: argparse.Namespace) -> str | None:
    if args.tracking_uri:
        return str(args.tracking_uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if getattr(args, "config", None) is None and not _default_config_exists():
        return None
    return settings_from(args).registry.tracking_uri


def _default_config_exists() -> bool:
    from mlops_console import locations

    return bool(os.environ.get("MLOPS_CONSOLE_CONFIG")) or locations.default_config_path().exists()


def _registry(uri: str) -> Any:
    from mlops_console.config import RegistrySettings
    from mlops_console.core.registry import RegistryClient

    return RegistryClient(RegistrySettings(tracking_uri=uri))


def _from_endpoint(args: argparse.Namespace) -> str | None:
    """Fill the log, its format, the reference and the window in from the endpoint's config (the
    command line wins where both say something)."""
    settings = settings_from(args)
    names = [e.name for e in settings.endpoints]
    if args.endpoint not in names:
        return f"no endpoint named {args.endpoint!r} in the config (configured: {', '.join(names) or 'none'})"
    index = names.index(args.endpoint)
    endpoint = settings.endpoints[index]
    if endpoint.inference_log is None or endpoint.quality is None:
        return f"endpoints[{index}] ({args.endpoint}) has no [endpoints.inference_log]"
    log = endpoint.inference_log
    args.log = Path(log.path).expanduser()
    args.format = args.format or log.format
    args.table = args.table or log.table
    args.reference = args.reference or endpoint.quality.reference
    args.window = args.window or endpoint.quality.window
    if not args.tracking_uri and settings.registry.tracking_uri:
        args.tracking_uri = settings.registry.tracking_uri
    return None


def cmd_drift(args: argparse.Namespace) -> int:
    from mlops_console.core.quality.offsets import TailError
    from mlops_console.core.quality.report import drift_report, open_tail
    from mlops_console.core.quality.sources import ReferenceError, artifact_name, load_reference
    from mlops_console.core.registry import RegistryError
    from mlops_console.core.run_artifacts import version_artifact_reader, version_signature

    problem = (
        "give either ENDPOINT (from the config) or --log PATH"
        if (args.endpoint is None) == (args.log is None)
        else None
    )
    if problem is None and args.endpoint is not None:
        problem = _from_endpoint(args)
    if problem is not None:
        print(f"mlops-console drift: {printable(problem)}", file=sys.stderr)
        return EXIT_USAGE
    args.window = args.window or 900.0
    fmt = _format_of(args)
    if fmt == "sqlite" and not args.table:
        raise CommandError("an SQLite log needs --table")
    if not args.log.exists():
        raise CommandError(f"log {args.log}: no such file")
    is_artifact = args.reference is not None and artifact_name(args.reference) is not None
    uri = _tracking_uri(args) if is_artifact or args.tracking_uri else None
    if is_artifact and not uri:
        raise CommandError(
            f"reference {args.reference}: an artifact needs a registry (--tracking-uri, $MLFLOW_TRACKING_URI "
            "or [registry] tracking_uri)"
        )
    client = _registry(uri) if uri else None

    def reference_for(model: str | None, version: str | None) -> Any:
        if is_artifact and client is not None:
            if not model or not version:
                raise CommandError("the log's records name no model version: an artifact reference needs one")
            fetch, described = version_artifact_reader(client, model, version)
            return load_reference(args.reference, fetch, described=described)
        return load_reference(args.reference)

    def signature_for(model: str | None, version: str | None) -> Any:
        if client is None or not model or not version:
            return None
        return version_signature(client, model, version)

    try:
        report = drift_report(
            open_tail(args.log, fmt, args.table),
            window=args.window,
            reference_for=reference_for if args.reference else None,
            signature_for=signature_for,
            version=args.version,
        )
    except (TailError, ReferenceError, RegistryError) as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(json_safe(report.to_dict()), indent=2, default=str))
    else:
        print("\n".join(describe(report)))
    return EXIT_OK


# -- text ------------------------------------------------------------------------------------------------
def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _seconds(value: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


def describe(report: Any) -> list[str]:
    """The report as lines of text; every name from the log or the registry is escaped."""
    from mlops_console.core.quality.records import format_time

    who = f"{report.model} v{report.version}" if report.model else f"version {report.version}"
    if report.end is None:
        return [f"drift: {printable(report.log)}: no scored rows"]
    quality = report.quality
    rows = quality.rows if quality else 0
    lines = [
        f"drift: {printable(who)} in {printable(report.log)}, window {_seconds(report.window)} "
        f"ending {format_time(report.end)}: {rows} rows"
    ]
    lines += [f"note: {printable(e)}" for e in report.events]
    if report.malformed:
        lines.append(f"note: {report.malformed} lines were not records (skipped)")
    if report.other_versions:
        others = ", ".join(f"{printable(k)}: {n}" for k, n in sorted(report.other_versions.items()))
        lines.append(f"note: rows of other versions in the window, not scored: {others}")
    if quality is None:
        return lines
    lines.append(f"reference: {printable(quality.reference)}")
    drift = quality.drift
    if drift is not None:
        opts = drift.options
        if drift.share is None:
            needs = f"{opts.min_reference} reference and {opts.min_current} current rows"
            lines.append(f"dataset drift: no verdict (a feature needs {needs})")
        else:
            verdict = "yes" if drift.dataset_drift else "no"
            lines.append(
                f"dataset drift: {verdict}: {len(drift.drifted)} of "
                f"{sum(1 for f in drift.features if f.verdict in ('drift', 'ok'))} features drift "
                f"(share {drift.share:.2f}, threshold {opts.dataset_share:.2f})"
            )
        rows = [
            [
                f.name,
                f.kind,
                f.verdict.upper() if f.drifted else f.verdict,
                _number(f.score),
                f"{_number(f.psi)} ({_number(f.psi_critical)})",
                _number(f.ks),
                str(f.reference_n),
                str(f.current_n),
                str(f.missing),
            ]
            for f in (*drift.features, *drift.predictions)
            if f.verdict != "not in reference" or f in drift.features  # a reference without predictions
        ]
        header = ["FEATURE", "KIND", "VERDICT", "SCORE", "PSI (CRITICAL)", "KS", "REF N", "CUR N", "MISSING"]
        lines += ["", table(header, rows), ""]
    if quality.inputs is not None and quality.inputs.rows:
        inputs = quality.inputs
        detail = f": {printable(inputs.summary())}" if inputs.broken_rows else ""
        lines.append(
            f"inputs: {inputs.broken_rows} of {inputs.rows} rows break the signature "
            f"({(inputs.share or 0):.1%}){detail} [signature: {printable(report.signature)}]"
        )
    mix = quality.prediction_mix
    if mix.get("kind") == "classes" and mix.get("shares"):
        shares = ", ".join(f"{printable(k)} {v:.0%}" for k, v in mix["shares"].items())
        lines.append(f"prediction mix: {shares}")
    elif mix.get("kind") == "numeric" and mix.get("count"):
        lines.append(f"prediction mix: p5 {mix['p5']:.4g}, median {mix['p50']:.4g}, p95 {mix['p95']:.4g}")
    predictions = quality.predictions
    examples = f": {printable(predictions.examples[0])}" if predictions.examples else ""
    lines.append(f"predictions: {predictions.invalid_rows} of {predictions.rows} invalid{examples}")
    stuck = quality.stuck
    if stuck.get("stuck"):
        lines.append(
            f"stuck: the same prediction {printable(stuck['prediction'])} for the last {stuck['run']} rows "
            "while the inputs varied"
        )
    else:
        lines.append(f"stuck: no (longest run of one prediction with varying inputs: {stuck['longest']})")
    return lines
