"""`web`: the console in a browser, one console process per session (textual-serve)."""

from __future__ import annotations

import argparse
import shlex
import sys

from mlops_console.commands.common import EXIT_OK, config_option, settings_from
from mlops_console.config import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    web = sub.add_parser("web", help="serve the console to a browser (loopback unless given a token)")
    config_option(web)
    web.add_argument("--host", help="address to listen on (default: [web] host, 127.0.0.1)")
    web.add_argument("--port", type=int, help="port (default: [web] port, 8765)")
    web.add_argument("--token", help="required from every browser before a session starts ([web] token)")
    web.add_argument("--read-only", action="store_true", help="sessions without promote/rollback/ack/silence")
    web.set_defaults(func=cmd_web)


def cmd_web(args: argparse.Namespace) -> int:
    from mlops_console.web.server import TokenServer, is_loopback

    settings = settings_from(args)
    host = args.host or settings.web.host
    port = args.port if args.port is not None else settings.web.port
    token = args.token or settings.web.token
    if not 1 <= port <= 65535:
        raise ConfigError(settings.source, [f"web.port: {port} is not a port (1-65535)"])
    if not is_loopback(host) and not token:
        raise ConfigError(
            settings.source,
            [
                f"web.host: {host} is reachable from other machines: a token is required "
                '(--token, or [web] token = "${VAR}")'
            ],
        )
    command = [sys.executable, "-m", "mlops_console"]
    if settings.source is not None:
        command += ["--config", str(settings.source.resolve())]
    if args.read_only:
        command.append("--read-only")
    if not token:
        print(
            f"mlops-console web: NO TOKEN: anyone who can open {host}:{port} on this machine gets a "
            f"console{'' if args.read_only else ' that can promote, roll back, ack and silence'}",
            file=sys.stderr,
        )
    server = TokenServer(shlex.join(command), host=host, port=port, token=token, title="mlops-console")
    server.serve()
    return EXIT_OK
