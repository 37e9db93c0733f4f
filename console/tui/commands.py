"""Command palette provider: navigation, endpoints, and the current screen's actions valid now."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from mlops_console.tui.text import clean

if TYPE_CHECKING:
    from mlops_console.tui.app import MlopsConsole


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = cast("MlopsConsole", self.app)
        run = app.run_console_command
        out: list[tuple[str, str, Callable[[], object]]] = [
            ("go: overview", "Endpoints overview", partial(run, "overview")),
            ("go: alerts", "Firing, acknowledged, silenced and resolved alerts", partial(run, "alerts")),
            ("go: models", "Registered models and versions", partial(run, "models")),
            ("go: audit", "Who did what, when", partial(run, "audit")),
            (
                "go: pipelines",
                "Training and batch pipelines, from their MLflow runs",
                partial(run, "pipelines"),
            ),
        ]
        for name in app.endpoint_names():
            out.append(
                (
                    f"endpoint: {clean(name, limit=60)}",
                    "Open the endpoint detail",
                    partial(app.open_endpoint, name),
                )
            )
        demo = getattr(app, "demo", None)
        if demo is not None and not getattr(app, "read_only", False):
            chaos = [
                ("kill", (), "stop its server"),
                ("restart", (), "restart its server"),
                ("slow", (800.0,), "add 800 ms latency"),
                ("fail", (0.3,), "fail 30% of requests"),
                ("shift", (True,), "shift its traffic's inputs (model drift)"),
                ("malformed", (True,), "send malformed requests"),
                ("heal", (), "remove all chaos"),
                ("bad_release", (), "the next version deployed here fails half its requests"),
            ]
            for name in app.endpoint_names():
                for method, args, what in chaos:
                    out.append(
                        (
                            f"chaos: {method} {clean(name, limit=40)}",
                            f"Demo chaos: {what}",
                            partial(app.demo_chaos, method, name, *args),
                        )
                    )
            snapshot = getattr(app, "snapshot", None)
            for pipeline in snapshot.pipelines if snapshot is not None else ():
                for switch, what in (
                    ("fail", "make its runs fail"),
                    ("hang", "make its next run hang"),
                    ("slow", "make its runs 5x slower"),
                    ("fraction", "make its runs score a tenth of their rows"),
                    ("heal", "remove all chaos"),
                ):
                    out.append(
                        (
                            f"chaos: pipeline {switch} {clean(pipeline.name, limit=40)}",
                            f"Demo chaos: {what}",
                            partial(app.demo_chaos, "pipeline", pipeline.name, switch),
                        )
                    )
        screen = self.screen
        actions = getattr(screen, "palette_actions", None)
        if actions is not None:
            for title, help_text, action in actions():
                out.append((title, help_text, partial(screen.run_action, action)))
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
