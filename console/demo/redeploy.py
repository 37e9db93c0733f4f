"""The demo's deploy command: restart one endpoint's server on another model version, same port.

    python -m mlops_console.demo.redeploy --root ROOT --endpoint iris-prod --model iris --version 3

Exits 0 once the new server answers /ping; otherwise exits 1 with the reason on stderr (and the
previous version brought back, best effort).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mlops_console.demo.processes import EndpointStartError
from mlops_console.demo.servers import READY_TIMEOUT_S, restart_endpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_console.demo.redeploy", description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="the demo's root directory")
    parser.add_argument("--endpoint", required=True, help="demo endpoint name, e.g. iris-prod")
    parser.add_argument("--model", required=True, help="registered model name")
    parser.add_argument("--version", required=True, help="model version to serve")
    parser.add_argument("--timeout", type=float, default=READY_TIMEOUT_S, help="seconds to wait for /ping")
    args = parser.parse_args(argv)
    if not args.version.isdigit():
        print(f"redeploy: version must be a number, got {args.version!r}", file=sys.stderr)
        return 2
    uri = f"models:/{args.model}/{args.version}"
    try:
        endpoint = restart_endpoint(args.root, args.endpoint, uri, timeout=args.timeout)
    except (EndpointStartError, KeyError, RuntimeError) as e:
        print(f"redeploy: {args.endpoint} -> {uri} failed: {e}", file=sys.stderr)
        return 1
    print(f"redeploy: {endpoint.name} now serves {uri} at {endpoint.url} (pid {endpoint.pid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
