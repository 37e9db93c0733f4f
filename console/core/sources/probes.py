"""The console's own probes: each endpoint's adapter on its interval, and its `/metrics` if configured.

Polls never overlap: the next probe of an endpoint is scheduled only after the last one finished, and
a slow endpoint skips its missed slots instead of bursting. First probes are spread over one interval
so a thousand endpoints do not fire in lock-step.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Mapping, Sequence

import aiohttp

from mlops_console.core.adapters import ProbeResult, ends_within_timeout_of, new_http_session
from mlops_console.core.endpoint_state import EndpointState
from mlops_console.core.promscrape import MetricsError, scrape
from mlops_console.core.sources.base import Loop, ScheduleStats, Sink

METRICS_SETTLE = 1.0
"""`once`: seconds between the two scrapes that give a rate."""


class ProbeSource:
    def __init__(self, states: Sequence[EndpointState], stats: ScheduleStats) -> None:
        self.states = states
        self.stats = stats
        self._http: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._http = new_http_session()

    def loops(self, sink: Sink) -> Mapping[str, Loop]:
        http = self._http
        assert http is not None, "open() first"
        return {
            f"probe {state.name}": functools.partial(self._probe_loop, http, state, sink)
            for state in self.states
        }

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def once(self) -> None:
        """Probe every endpoint once, then sample metrics twice, a second apart: after the probes, so
        that an adapter reads the series of what its probe found (a route, a stack), both times."""
        scraped = [s for s in self.states if s.settings.metrics_url and s.source == "probe"]
        async with new_http_session() as http:
            await asyncio.gather(*(self._probe(http, s, None) for s in self.states))
            if scraped:
                await asyncio.gather(*(self._scrape(http, s) for s in scraped))
                await asyncio.sleep(METRICS_SETTLE)
                await asyncio.gather(*(self._scrape(http, s) for s in scraped))

    async def _probe_loop(self, http: aiohttp.ClientSession, state: EndpointState, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        interval = state.settings.interval
        next_at = loop.time() + random.uniform(0, min(interval, 1.0))
        while True:
            delay = next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.stats.scheduled += 1
            self.stats.lags.append(loop.time() - next_at)
            if state.settings.metrics_url and state.source == "probe":
                await asyncio.gather(self._probe(http, state, sink), self._scrape(http, state))
            else:
                await self._probe(http, state, sink)
            next_at += interval
            now = loop.time()
            if next_at < now:
                missed = int((now - next_at) // interval) + 1
                self.stats.scheduled += missed - 1
                next_at += missed * interval

    async def _probe(self, http: aiohttp.ClientSession, state: EndpointState, sink: Sink | None) -> None:
        adapter = state.adapter
        # No guard (None: no timer) where the request's own timeout ends the probe first: it would add
        # a timer, and a cancelled one left in the loop's heap, to every probe, and never fire.
        guard = None if ends_within_timeout_of(adapter) else state.settings.timeout + 1.0
        try:
            async with asyncio.timeout(guard):  # no extra task per probe
                result = await adapter.probe(http)
        except Exception as exc:  # an adapter bug must not kill the endpoint's loop
            result = ProbeResult(ok=False, error=f"probe failed: {type(exc).__name__}: {exc}")
        self.stats.probes += 1
        now = time.time()
        if sink is None:
            state.record(result, now)
        else:
            sink.probed(state, result, now)

    @staticmethod
    async def _scrape(http: aiohttp.ClientSession, state: EndpointState) -> None:
        url = state.settings.metrics_url
        assert url is not None
        names = state.adapter.metric_names()
        try:
            sample = await scrape(http, url, names, state.settings.timeout)
        except MetricsError as exc:
            state.metrics_failed(str(exc))
            return
        state.add_metrics(sample, names)
