"""Telling a server that is still loading its model from one that is down.

Serving stacks answer during a model load in ways that look like an outage, or like health: BentoML
accepts connections and hangs every request, MLServer and Triton say live but not ready, TorchServe's
`/ping` says Healthy while no worker is up. An adapter classifies each probe; `LoadWatch` decides how
long "not ready yet" may count as loading: `load_timeout` seconds from the first such probe. After
that the endpoint is down, since a load that never ends is an outage, and so is a server that exits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mlops_console.core.adapters import ProbeResult


class LoadWatch:
    """One endpoint's loading window, kept by its adapter across probes."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._since: float | None = None
        self.seen_ready = False
        """Ready since the server last refused connections (or since the console started watching)."""

    def ready(self) -> None:
        """The model answered: whatever was loading has loaded."""
        self._since = None
        self.seen_ready = True

    def unreachable(self) -> None:
        """No connection at all (not running, restarting): whatever comes next may be a fresh load."""
        self._since = None
        self.seen_ready = False

    @property
    def hang_is_loading(self) -> bool:
        """Whether a request that timed out on an open connection may be a model load: only on a
        server not seen ready since it (re)started. One that served and then hangs is down."""
        return not self.seen_ready

    def loading(self, result: ProbeResult, why: str) -> ProbeResult:
        """Mark `result` as loading because of `why`, or as down once the window has run out."""
        now = self._clock()
        if self._since is None:
            self._since = now
        waited = now - self._since
        result.ok = False
        result.loading = waited < self.limit
        result.error = (
            f"loading: {why}"
            if result.loading
            else f"still not ready after {waited:.0f} s (load_timeout {self.limit:g} s): {why}"
        )
        return result
