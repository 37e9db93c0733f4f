"""The terminal console (`mlops-console` without a subcommand).

The app owns the shared state (latest engine snapshot, alert counts, host sample) and the polls that
feed it; screens render it. Every blocking call runs in a thread worker; results come back as
messages. Only the visible screen renders a new snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from mlops_console.config import Settings
from mlops_console.core.snapshot import EndpointSnapshot, EngineSnapshot
from mlops_console.core.store import Alert
from mlops_console.tui.backend import Backend, next_order
from mlops_console.tui.collector import freeze_after_start
from mlops_console.tui.commands import ConsoleCommands
from mlops_console.tui.host import HostSample, HostSampler
from mlops_console.tui.messages import (
    AlertCountsReceived,
    HostSampled,
    RegistrySeen,
    SnapshotReceived,
    StoreChanged,
)
from mlops_console.tui.navigation import ConsoleNavigation
from mlops_console.tui.screens.alerts import AlertsScreen
from mlops_console.tui.screens.audit import AuditScreen
from mlops_console.tui.screens.base import ConsoleScreen
from mlops_console.tui.screens.models import ModelsScreen
from mlops_console.tui.screens.overview import OverviewScreen
from mlops_console.tui.screens.pipelines import PipelinesScreen
from mlops_console.tui.sources import EngineSource, SnapshotSource
from mlops_console.tui.status_line import HEALTH_SYMBOL, registry_label, status_line
from mlops_console.tui.text import clean
from mlops_console.tui.theme import palette
from mlops_console.tui.typeahead import TypeAhead

STORE_POLL_SECONDS = 2.0
HOST_POLL_SECONDS = 2.0
REGISTRY_RECHECK_SECONDS = 5.0


class MlopsConsole(ConsoleNavigation):
    """The console. Everything time- or environment-dependent can be injected for tests."""

    TITLE = "mlops-console"
    CSS_PATH = "console.tcss"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    MODES = {
        "overview": OverviewScreen,
        "alerts": AlertsScreen,
        "models": ModelsScreen,
        "audit": AuditScreen,
        "pipelines": PipelinesScreen,
    }
    DEFAULT_MODE = "overview"
    BINDINGS = [
        Binding(
            "colon", "command_bar", ":cmd", id="app.command", tooltip="Open the command bar (:alerts, :q...)"
        ),
        Binding("question_mark", "help", "Help", id="app.help", tooltip="Keys and help for this screen"),
        Binding(
            "1",
            "switch_mode('overview')",
            "Overview",
            id="app.overview",
            tooltip="Endpoints overview",
            show=False,
        ),
        Binding("2", "switch_mode('alerts')", "Alerts", id="app.alerts", tooltip="Alerts", show=False),
        Binding(
            "3", "switch_mode('models')", "Models", id="app.models", tooltip="Registered models", show=False
        ),
        Binding("4", "switch_mode('audit')", "Audit", id="app.audit", tooltip="Audit trail", show=False),
        Binding(
            "5",
            "switch_mode('pipelines')",
            "Pipelines",
            id="app.pipelines",
            tooltip="Training and batch pipelines",
            show=False,
        ),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        snapshot_source: SnapshotSource | None = None,
        read_only: bool = False,
        store: Any = None,
        registry: Any = None,
        clock: Callable[[], float] = time.time,
        host_sampler: Callable[[list[tuple[str, str]]], HostSample] | None = None,
        actor: str | None = None,
        poll: bool = True,
        demo: Any = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.read_only = read_only
        self.clock = clock
        self.backend = Backend(
            settings,
            store=store,
            registry=registry,
            actor=actor,
            on_registry_state=self._registry_seen,
        )
        self.source: SnapshotSource = snapshot_source or EngineSource(settings, read_only=read_only)
        self.host_sampler = host_sampler
        self.poll = poll
        self.demo = demo
        """A running `DemoEnvironment` (`mlops-console demo`): adds chaos commands to the palette."""
        self.snapshot: EngineSnapshot | None = None
        self.alert_counts: dict[str, int] | None = None
        self.open_alerts: list[Alert] = []
        self.host_sample: HostSample | None = None
        self.store_error: str | None = None
        self._engine_registry: tuple[int, str] | None = None
        """(order, state) of the engine's registry state, ordered when it last changed."""
        self._palette: dict[str, str] | None = None
        self.typeahead = TypeAhead(self)
        if read_only:
            self.sub_title = "READ-ONLY"

    def _registry_seen(self, seen: tuple[int, str]) -> None:
        """A registry call of this console reached the registry or did not (from a worker thread)."""
        self.post_message(RegistrySeen(seen))

    # -- startup and shutdown ----------------------------------------------------------------------
    def on_mount(self) -> None:
        if os.environ.get("MLOPS_CONSOLE_FIRST_FRAME_LOG"):
            self.call_after_refresh(self._log_first_frame)
        keymap = dict(self.settings.tui.keymap)
        if keymap:
            self.set_keymap(keymap)
        # Start the engine and the polls after the first frame: their imports (sqlite_utils pulls in
        # pandas, the engine httpx/aiohttp) would otherwise compete with it for the GIL.
        self.call_after_refresh(self._start_background)

    def _start_background(self) -> None:
        self._start_source()
        self._poll_store()
        self._poll_host()
        if self.poll:
            self.set_interval(REGISTRY_RECHECK_SECONDS, self._recheck_registry)

    def _log_first_frame(self) -> None:
        """Benchmark aid: seconds from process start to the first rendered frame."""
        started = os.environ.get("MLOPS_CONSOLE_T0")  # e.g. `MLOPS_CONSOLE_T0=$(date +%s.%N)`
        if started:
            elapsed = time.time() - float(started)
        else:
            import psutil  # create_time() is only as precise as the kernel's boot time (1 s)

            elapsed = time.time() - psutil.Process().create_time()
        with open(os.environ["MLOPS_CONSOLE_FIRST_FRAME_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{elapsed:.3f}\n")

    async def on_unmount(self) -> None:
        await asyncio.to_thread(self.source.stop)

    @work(thread=True, exit_on_error=False, group="source")
    def _start_source(self) -> None:
        self.source.start(self._deliver_snapshot)

    def _deliver_snapshot(self, snapshot: EngineSnapshot) -> None:
        """Called from the engine's thread; `post_message` is thread-safe."""
        self.post_message(SnapshotReceived(snapshot))

    @work(thread=True, exit_on_error=False, exclusive=True, group="store-poll")
    def _poll_store(self) -> None:
        try:
            store = self.backend.store
            counts = store.alert_counts()
            open_alerts = store.list_alerts("open", limit=1000)
        except Exception as exc:  # store unreadable: say so, keep polling
            self.call_from_thread(self._store_failed, exc)
        else:
            self.post_message(AlertCountsReceived(counts, open_alerts))
        finally:
            if self.poll:
                self.call_from_thread(self.set_timer, STORE_POLL_SECONDS, self._poll_store)

    def _store_failed(self, exc: Exception) -> None:
        self.store_error = clean(f"store unavailable: {exc}", limit=120)
        self._update_status()

    @work(thread=True, exit_on_error=False, exclusive=True, group="host-poll")
    def _poll_host(self) -> None:
        try:
            if self.host_sampler is None:
                self.host_sampler = HostSampler()
            endpoints = [(e.name, e.url) for e in self.settings.endpoints]
            self.post_message(HostSampled(self.host_sampler(endpoints)))
        finally:
            if self.poll:
                self.call_from_thread(self.set_timer, HOST_POLL_SECONDS, self._poll_host)

    async def on_event(self, event: events.Event) -> None:
        if self.typeahead.hold(event):
            return
        await super().on_event(event)
        for held in self.typeahead.release_after(event):
            await self.on_event(held)

    # -- incoming data -------------------------------------------------------------------------------
    def on_snapshot_received(self, message: SnapshotReceived) -> None:
        self.snapshot = message.snapshot
        if self._engine_registry is None or self._engine_registry[1] != message.snapshot.registry:
            self._engine_registry = (next_order(), message.snapshot.registry)
        self._update_status()
        if not self.screen_stack:
            return  # shutting down: a snapshot that arrives late has no screen to go to
        screen = self.screen
        if isinstance(screen, ConsoleScreen):
            screen.show_snapshot(message.snapshot)
        self.call_after_refresh(freeze_after_start, len(message.snapshot.endpoints))

    def on_alert_counts_received(self, message: AlertCountsReceived) -> None:
        self.alert_counts = message.counts
        self.open_alerts = message.open_alerts
        self.store_error = None
        self._update_status()  # every poll, so a stale engine shows even when nothing else changes

    def on_registry_seen(self, message: RegistrySeen) -> None:
        self._update_status()

    def registry_state(self) -> str:
        """What the registry was last seen doing: by the engine's refresh or this console's own calls.

        Whichever saw it last wins, so "registry ok" never stands next to a screen that just found
        the registry unreachable (the engine checks only every `registry.refresh`).
        """
        engine, mine = self._engine_registry, self.backend.registry_state
        if mine is not None and (engine is None or mine[0] > engine[0]):
            return mine[1]
        if engine is not None:
            return engine[1]
        return "…" if self.backend.registry_configured else "not configured"

    def _recheck_registry(self) -> None:
        """While the registry looks unreachable, ask it again: recovery shows without a screen asking."""
        if registry_label(self.registry_state()).startswith("unreachable"):
            self._check_registry()

    @work(thread=True, exit_on_error=False, exclusive=True, group="registry-check")
    def _check_registry(self) -> None:
        with contextlib.suppress(Exception):  # the outcome is recorded in backend.registry_state
            self.backend.check_registry()

    def on_host_sampled(self, message: HostSampled) -> None:
        self.host_sample = message.sample
        if not self.screen_stack:
            return  # shutting down: the host poll's last sample arrived after the screens closed
        screen = self.screen
        if hasattr(screen, "show_host"):
            screen.show_host(message.sample)

    def on_store_changed(self, message: StoreChanged) -> None:
        """This console wrote to the store: refresh counts now and the visible screen."""
        self._poll_store()
        for screen in self.screen_stack:
            if isinstance(screen, ConsoleScreen):
                screen.store_changed(message.what)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker becomes something the user sees (screens forward theirs)."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(
                clean(f"{type(error).__name__}: {error}", limit=300),
                title=event.worker.name,
                severity="error",
                markup=False,
                timeout=8,
            )

    # -- status line -------------------------------------------------------------------------------
    def theme_colors(self) -> dict[str, str]:
        """Rich styles for data cells, from the theme's variables (alpha blended over the background)."""
        if self._palette is None:
            self._palette = palette(self.get_css_variables())
        return self._palette

    def watch_theme(self) -> None:
        self._palette = None

    def health_text(self, health: str, word: bool = True) -> Text:
        symbol = HEALTH_SYMBOL.get(health, "?")
        style = self.theme_colors().get(health, "")
        if health == "down":
            style = f"bold {style}"  # stands out under NO_COLOR too
        return Text(f"{symbol} {health}" if word else symbol, style=style, end="")

    def endpoint_health_text(self, endpoint: EndpointSnapshot) -> Text:
        """An endpoint's health word; one only remembered from before a restart is waiting for discovery."""
        if endpoint.remembered:
            return Text("? waiting", style="dim", end="")
        return self.health_text(endpoint.health)

    def status_text(self) -> Text:
        """The status line: endpoints by health, alerts by state, the registry, the engine."""
        return status_line(self)

    def _update_status(self) -> None:
        """The status line of the screen in view, also while a dialog covers part of it."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, ConsoleScreen):
                screen.set_status(self.status_text())
                return

    def export_screenshot(self, *, title: str | None = None, simplify: bool = False) -> str:
        """Textual's SVG, marked to keep its spaces: each run of text in one style is its own `<text>`,
        and renderers such as librsvg drop the spaces at either end of one that does not say so, which
        ran words together ("iris-prodpid 4242", "31%last ok")."""
        svg = super().export_screenshot(title=title, simplify=simplify)
        return svg.replace("<svg ", '<svg xml:space="preserve" ', 1)


def run_console(settings: Settings, read_only: bool = False, demo: Any = None) -> int:
    """Entry point used by `mlops-console` (no subcommand) and `mlops-console demo`."""
    _log_to_file()
    app = MlopsConsole(settings, read_only=read_only, demo=demo)
    result = app.run()
    return int(result or 0)


def _log_to_file() -> None:
    """Engine and worker logs go to a file: a stray line on stderr would garble the screen."""
    from mlops_console import locations
    from mlops_console.logs import log_to_file

    log_to_file(locations.log_path())
