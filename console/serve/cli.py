"""`mlops-console serve MODEL_URI --port N`: a drop-in for `mlflow models serve` with metrics."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from mlops_console.serve.limits import DEFAULT_MAX_BODY, parse_size

DEFAULT_LOG_MAX_BYTES = 100 * 1024 * 1024
MAX_LOG_BYTES = 1024**4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_uri", metavar="MODEL_URI", help="models:/name@alias, models:/name/3, runs:/..., a path"
    )
    parser.add_argument(
        "--port", "-p", type=int, default=5000, help="port to listen on (default 5000, like mlflow)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--tracking-uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument(
        "--chaos", action="store_true", help="enable POST /chaos fault injection (demos only)"
    )
    parser.add_argument("--workers", type=int, default=4, help="prediction threads (default 4)")
    parser.add_argument(
        "--max-body",
        type=_size,
        default=DEFAULT_MAX_BODY,
        metavar="SIZE",
        help="largest request body accepted, e.g. 512k, 10M (default 10M); larger ones get HTTP 413",
    )
    parser.add_argument(
        "--log-inferences",
        type=Path,
        metavar="PATH",
        help="append one JSON line per scored row to PATH (inputs, prediction, model version)",
    )
    parser.add_argument(
        "--log-sample",
        type=_rate,
        default=1.0,
        metavar="RATE",
        help="share of scored rows logged, above 0 and at most 1 (default 1: every row)",
    )
    parser.add_argument(
        "--log-max-bytes",
        type=_log_size,
        default=DEFAULT_LOG_MAX_BYTES,
        metavar="SIZE",
        help="rotate the log (PATH.1, PATH.2, ...; 5 kept) when it would grow past SIZE (default 100M)",
    )
    # Used by the demo: exit when this process is gone, so restarted servers never outlive the demo.
    parser.add_argument("--exit-with-pid", type=int, default=None, help=argparse.SUPPRESS)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _log_size(text: str) -> int:
    try:
        return parse_size(text, MAX_LOG_BYTES)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < rate <= 1.0:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r} must be above 0 and at most 1")
    return rate


def run(args: argparse.Namespace) -> int:
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    _quiet_mlflow()
    # Imported here: mlflow costs ~2 s and the main CLI must stay fast for other subcommands.
    from mlops_console.serve import mlflow_protocol, model_loader
    from mlops_console.serve.app import build_app
    from mlops_console.serve.server import serve_forever

    try:
        model, identity = model_loader.load(args.model_uri)
    except Exception as e:
        print(f"serve: cannot load {args.model_uri}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    mlflow_protocol.mark_serving_environment()
    described = (
        f"{identity.model_name} v{identity.model_version}" if identity.model_version else args.model_uri
    )
    print(f"serve: loaded {args.model_uri} ({described})", file=sys.stderr, flush=True)
    inference_log = None
    if args.log_inferences is not None:
        from mlops_console.serve.inference_log import InferenceLog

        try:
            inference_log = InferenceLog(
                args.log_inferences, sample=args.log_sample, max_bytes=args.log_max_bytes
            )
        except OSError as e:
            print(f"serve: cannot write inference log {args.log_inferences}: {e.strerror}", file=sys.stderr)
            return 1
        print(f"serve: logging scored rows to {args.log_inferences}", file=sys.stderr, flush=True)
    app = build_app(
        model,
        identity,
        chaos=args.chaos,
        workers=args.workers,
        max_body=args.max_body,
        inference_log=inference_log,
    )
    try:
        return asyncio.run(serve_forever(app, args.host, args.port, exit_with_pid=args.exit_with_pid))
    except OSError as e:  # typically the port is taken
        print(f"serve: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    finally:
        if inference_log is not None:
            inference_log.close()


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops-console serve", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
