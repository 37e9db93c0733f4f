"""`mlops-console serve MODEL_URI --port N`: a drop-in for `mlflow models serve` with metrics."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from mlops_console.serve.limits import DEFAULT_MAX_BODY, parse_size


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
    # Used by the demo: exit when this process is gone, so restarted servers never outlive the demo.
    parser.add_argument("--exit-with-pid", type=int, default=None, help=argparse.SUPPRESS)


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
    app = build_app(model, identity, chaos=args.chaos, workers=args.workers, max_body=args.max_body)
    try:
        return asyncio.run(serve_forever(app, args.host, args.port, exit_with_pid=args.exit_with_pid))
    except OSError as e:  # typically the port is taken
        print(f"serve: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1


def _quiet_mlflow() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.getLogger("mlflow").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops-console serve", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
