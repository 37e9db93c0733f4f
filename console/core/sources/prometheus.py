"""Figures (and, where the console does not probe, health) read from a Prometheus server.

Every `[prometheus] interval` one instant query per signal answers for all endpoints of an adapter
at once (grouped by `[prometheus] group_by`), never one query per endpoint. When Prometheus cannot
give a usable answer, each endpoint keeps its last figures marked stale and no rule judges them; health
read from `up{}` is then neither up nor down, so nothing pages for Prometheus' own outage.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Mapping

import aiohttp

from mlops_console.config import EndpointSettings, MetricNames, PrometheusQueries, Settings, parse_duration
from mlops_console.core.adapters import ProbeResult, new_http_session
from mlops_console.core.endpoint_state import EndpointState, PromFigures
from mlops_console.core.promapi import PromError, by_label, client_for
from mlops_console.core.promql import SignalQueries, expand
from mlops_console.core.series import RPS_KEEP, RPS_STEP
from mlops_console.core.sources.base import Loop, Sink
from mlops_console.core.sources.prometheus_discovery import found_by, gone_after_restart_reason, gone_reason
from mlops_console.core.sources.prometheus_round import round_figures
from mlops_console.core.store import Store

log = logging.getLogger("mlops_console.prometheus")

BACKFILL_SLICE = 100.0
"""Seconds of throughput history read back per range query: at 10,000 endpoints the parsed answer of
100 s takes about 40 MB at its peak, of 300 s about 90 MB."""

ROUND_SLICE = 250
"""Endpoints whose figures are put in place (and their rules evaluated) per turn of the event loop: a
round's 10,000 at once held the loop for seconds, and every probe and write due meanwhile with it."""


class PrometheusSource:
    """Reads the endpoints of `endpoints` whose source is Prometheus; with `[[discover]]` tables, adds
    the endpoints it finds to `endpoints` and removes them when they are gone (the engine's dict:
    everything the engine shows, evaluates and stores follows it)."""

    def __init__(
        self, settings: Settings, endpoints: dict[str, EndpointState], store: Store | None = None
    ) -> None:
        assert settings.prometheus is not None
        self.store = store
        """Where the minutes missing since the last run are filled from Prometheus (None: not filled)."""
        self._filled: set[str] = set()
        self._since_minute = int(time.time() // 60)
        """The minute this source started reading: the store's minutes from then on are this run's."""
        self.settings = settings
        self.prom = settings.prometheus
        self.client = client_for(settings)
        self.window = parse_duration(self.prom.window)
        self.endpoints = endpoints
        self.configured = frozenset(e.name for e in settings.endpoints)
        self.state = "connecting"
        """`ok`, `connecting`, or what is wrong (shown on screen and in `status`)."""
        self.queries_sent = 0
        self._remembered: dict[str, float | None] = {}
        """Endpoints a previous leader had discovered, not found since: when it last wrote them."""
        self._unfound_since: dict[str, float] = {}
        self._refused: set[str] = set()  # what discovery could not make an endpoint of, said once
        self._queries: dict[tuple[str, str], SignalQueries] = {}
        self._keys: dict[str, tuple[MetricNames, tuple[str, str]]] = {}
        """Endpoint name to the names its adapter gave last round and their key in `_queries`."""
        self._http: aiohttp.ClientSession | None = None

    @property
    def states(self) -> list[EndpointState]:
        """The endpoints read from here (not those held while their target is missing)."""
        return [s for s in self.endpoints.values() if s.source == "prometheus" and s.missing_since is None]

    def groups(self) -> dict[SignalQueries, list[EndpointState]]:
        """Endpoints by the queries that answer for them (one set per adapter and its overrides)."""
        out: dict[SignalQueries, list[EndpointState]] = {}
        keys, self._keys = self._keys, {}
        for state in self.states:
            names = state.adapter.metric_names()
            known = keys.get(state.name)
            # Written out once per names object, not once per endpoint and round (a tenth of a round).
            if known is None or known[0] is not names:
                known = (names, (state.settings.adapter, names.model_dump_json()))
            self._keys[state.name] = known
            key = known[1]
            queries = self._queries.get(key)
            if queries is None:
                overrides = self.prom.queries.get(state.settings.adapter) or PrometheusQueries()
                queries = self._queries[key] = expand(overrides, names, self.prom)
            out.setdefault(queries, []).append(state)
        return out

    async def open(self) -> None:
        self._http = new_http_session()
        # Until a round of this term answers: what it said when this watcher last led is stale.
        self.state = "connecting"
        self._since_minute = int(time.time() // 60)

    def loops(self, sink: Sink) -> Mapping[str, Loop]:
        if not self.states and not self.settings.discover:
            return {}

        async def run() -> None:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                assert self._http is not None
                await self.evaluate(self._http, sink)
                next_at += self.prom.interval
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                if next_at < loop.time():  # slow answers skip rounds instead of bursting
                    next_at = loop.time()

        loops: dict[str, Loop] = {"prometheus": run}
        if self.store is not None:

            async def fill() -> None:
                while True:
                    # After the round (and discovery): it goes first, and finds the endpoints to fill.
                    await asyncio.sleep(self.prom.interval)
                    assert self._http is not None
                    await self.fill_store(self._http)

            loops["prometheus history"] = fill
        return loops

    async def close(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    async def once(self) -> None:
        async with new_http_session() as http:
            await self.evaluate(http, None)

    # -- one round ----------------------------------------------------------------------------------
    async def evaluate(self, http: aiohttp.ClientSession, sink: Sink | None) -> None:
        problems = []
        if self.settings.discover:
            try:
                await self.discover(http, sink)
            except PromError as exc:
                problems.append(f"discovery: {exc}")  # keep what was found until it answers again
        for queries, states in self.groups().items():
            now = time.time()
            try:
                figures, up = await self._read(http, queries, states, now)
            except PromError as exc:
                reason = f"Prometheus {self.client.url}: {exc}"
                problems.append(str(exc))
                for state in states:
                    state.prometheus_failed(reason, now)
                continue
            await self._backfill(http, queries, states, now)
            for index, state in enumerate(states):
                if index and index % ROUND_SLICE == 0:
                    await asyncio.sleep(0)  # the rest of the engine (probes of a mixed fleet) runs meanwhile
                by_up = state.health_source == "prometheus"
                state.set_prometheus(figures[state.name], probe_follows=by_up)
                if by_up:
                    result = up[state.name]
                    if sink is None:
                        state.record(result, now)
                    else:
                        sink.probed(state, result, now)
        now_state = "ok" if not problems else f"{self.client.url}: {problems[0]}"
        if now_state != self.state and sink is not None:  # `status` prints the state itself
            if problems:
                log.warning(
                    "prometheus %s; figures shown are stale", now_state, extra={"event": "prometheus"}
                )
            elif self.state != "connecting":
                log.info("prometheus %s answers again", self.client.url, extra={"event": "prometheus"})
        self.state = now_state

    async def _read(
        self, http: aiohttp.ClientSession, queries: SignalQueries, states: list[EndpointState], now: float
    ) -> tuple[dict[str, PromFigures], dict[str, ProbeResult]]:
        """Every signal of `states`, each from one query; PromError if any query fails (a round is
        used whole or not at all: figures from two moments would not agree)."""
        group = self.prom.group_by
        texts = [queries.requests, queries.errors, *(q for _, q in queries.latency)]
        if any(s.health_source == "prometheus" for s in states):
            texts.append(queries.up)
        # Every query ends (each within the timeout) before the round does, failed or not: a round that
        # left its slow siblings running would pile them onto the next, and a slow Prometheus under more
        # and more concurrent queries never answers in time again.
        answers = await asyncio.gather(
            *(self.client.query_by(http, text, group) for text in texts), return_exceptions=True
        )
        self.queries_sent += len(texts)
        by_group: list[dict[str, float]] = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            by_group.append(answer)
        return round_figures(by_group, states, group, self.window, now)

    async def _backfill(
        self, http: aiohttp.ClientSession, queries: SignalQueries, states: list[EndpointState], now: float
    ) -> None:
        """Throughput history of endpoints new to this source, from one range query: baselines (and
        the detail chart) start from what Prometheus remembers, not from nothing. Retried next round
        when it fails."""
        todo = [s for s in states if not s.backfilled]
        if not todo:
            return
        # In slices of BACKFILL_SLICE, each put in place as it arrives: the answer for a whole fleet over
        # RPS_KEEP is 1.8 million points at 10,000 endpoints, which parsed at once would take most of
        # the memory the engine may use.
        group = self.prom.group_by
        empty = {s.settings.group_value: s for s in todo if not s.series.rps_history}
        keys = frozenset(empty)
        start = now - RPS_KEEP
        while start <= now:
            end = min(now, start + BACKFILL_SLICE)
            try:  # parsed on a worker thread: 10,000 series of 10 points would hold up the loop
                series = await self.client.query_range_folded(
                    http, queries.requests, start, end, RPS_STEP, by_label(group, keys)
                )
            except PromError as exc:
                for state in empty.values():
                    state.series.rps_history.clear()  # the whole history next round, not half of it
                log.info("no throughput history from Prometheus yet: %s", exc, extra={"event": "prometheus"})
                return
            self.queries_sent += 1
            for key, points in series:
                empty[key].series.rps_history.extend(points)
            start = end + RPS_STEP  # the same grid of steps, continued
        for done in todo:
            done.backfilled = True

    # -- the store's history ------------------------------------------------------------------------
    async def fill_store(self, http: aiohttp.ClientSession) -> None:
        """Fill the store's per-minute history of endpoints new to this source with what Prometheus
        remembers: the minutes after the newest one stored (at most the last `FILL_SPAN`) up to the
        last complete one, so the charts and backtests of a watcher that was stopped (or of an endpoint
        just discovered) do not start empty. Its own task, not the rounds'; one slice of time and one
        signal at a time; never over a stored minute. Retried next time when Prometheus cannot answer."""
        from mlops_console.core.sources.prometheus_history import FILL_SLICE, FILL_SPAN, fleet_minutes

        store = self.store
        assert store is not None
        for queries, states in self.groups().items():
            todo = [s for s in states if s.name not in self._filled]
            if not todo:
                continue
            now = time.time()
            until = int(now // 60)  # the first minute not filled: the current one is the engine's
            try:
                stored = await asyncio.to_thread(
                    store.last_minutes, [s.name for s in todo], self._since_minute
                )
            except sqlite3.Error as exc:
                log.warning("store history not filled: %s; retrying", exc, extra={"event": "store_error"})
                return
            floor = until - int(FILL_SPAN // 60)
            wanted: dict[str, tuple[tuple[str, int], ...]] = {}  # read by worker threads: never changed
            for s in todo:
                first = max(stored.get(s.name, floor - 1) + 1, floor)
                wanted[s.settings.group_value] = (*wanted.get(s.settings.group_value, ()), (s.name, first))
            start = min((first for each in wanted.values() for _, first in each), default=until)
            step = int(FILL_SLICE // 60)
            try:
                for minute in range(start, until, step):
                    last = min(minute + step, until) - 1
                    rows = await fleet_minutes(
                        self.client, http, queries, self.prom.group_by, wanted, minute * 60.0, last * 60.0
                    )
                    self.queries_sent += 2 + len(queries.latency)
                    await asyncio.to_thread(store.fill_rollups, rows)
                    del rows
            except PromError as exc:
                log.info("no stored history from Prometheus yet: %s", exc, extra={"event": "prometheus"})
                return
            except sqlite3.Error as exc:
                # A full, locked or read-only store is the housekeeping's to report; the fill waits.
                log.warning("store history not filled: %s; retrying", exc, extra={"event": "store_error"})
                return
            self._filled.update(s.name for s in todo)

    # -- discovery ------------------------------------------------------------------------------------
    @property
    def remembered(self) -> frozenset[str]:
        """Endpoints discovered before a restart, neither found again nor gone yet."""
        return frozenset(self._remembered)

    def remember(self, last_seen: Mapping[str, float | None]) -> None:
        """Endpoints a previous leader (this watcher before a restart, or another one) had discovered,
        with when it last saw them. Each found again carries on (its open alerts with it); one that no
        round of discovery finds for `discover_grace`, counted from the first round that answered, goes:
        its open alerts resolve once, saying so. Never before discovery has answered: a watcher that
        starts while Prometheus is down resolves nothing."""
        # Leading again (after a lost lease) starts from what the store says now, grace included.
        known = self.configured | self.endpoints.keys()
        self._remembered = {name: at for name, at in last_seen.items() if name not in known}
        self._unfound_since.clear()

    def _settle_remembered(
        self, found: Mapping[str, EndpointSettings], now: float, sink: Sink | None
    ) -> None:
        grace = self.prom.discover_grace
        for name, last_seen in list(self._remembered.items()):
            if name in found or name in self.configured:
                del self._remembered[name]
                self._unfound_since.pop(name, None)
                continue
            since = self._unfound_since.setdefault(name, now)
            if now - since < grace:
                continue
            del self._remembered[name]
            del self._unfound_since[name]
            log.info(
                "%s, discovered before the restart, is gone from Prometheus",
                name,
                extra={"event": "endpoint_gone", "endpoint": name},
            )
            if sink is not None:
                sink.endpoint_gone(name, gone_after_restart_reason(last_seen, since, grace), now)

    async def discover(self, http: aiohttp.ClientSession, sink: Sink | None = None) -> None:
        """Add the endpoints every `[[discover]]` table finds now (new ones told to `sink`, to restore
        their detectors). One no table finds is held (shown stale, not judged: a target gone takes its
        `up{}` with it) for `discover_grace`; back within it, it carries on; after it, it goes, and its
        open alerts resolve once, saying so (through `sink`)."""
        found: dict[str, EndpointSettings] = {}
        for table in self.settings.discover:
            for endpoint in await found_by(self.client, http, table, self.prom.group_by, self._refused):
                if endpoint.name not in self.configured:
                    found.setdefault(endpoint.name, endpoint)
        now = time.time()
        grace = self.prom.discover_grace
        if self._remembered:
            self._settle_remembered(found, now, sink)
        for name, state in list(self.endpoints.items()):
            if not state.discovered or name in found:
                continue
            if state.missing_since is None:
                state.missing_since = now
                log.info(
                    "%s is no longer discovered in Prometheus; it goes in %.0f s unless it comes back",
                    name,
                    grace,
                    extra={"event": "endpoint_missing", "endpoint": name},
                )
            if now - state.missing_since >= grace:
                del self.endpoints[name]
                log.info(
                    "%s is gone from Prometheus", name, extra={"event": "endpoint_gone", "endpoint": name}
                )
                if sink is not None:
                    sink.endpoint_gone(name, gone_reason(state.missing_since, grace), now)
            else:
                since = time.strftime("%H:%M:%S", time.gmtime(state.missing_since))
                state.hold(f"no longer discovered in Prometheus (since {since} UTC)", now)
        new: list[str] = []
        for name, endpoint in found.items():
            current = self.endpoints.get(name)
            if current is not None and current.settings == endpoint:
                if current.missing_since is not None:
                    current.missing_since = None
                    log.info("%s discovered again", name, extra={"event": "endpoint_back", "endpoint": name})
                continue
            state = self.endpoints[name] = EndpointState(
                endpoint, source="prometheus", health_source="prometheus", discovered=True
            )
            if current is not None:  # its target's labels changed, not what its detectors learnt
                state.detected = current.detected
                continue
            new.append(name)
            log.info("%s found in Prometheus", name, extra={"event": "endpoint_found", "endpoint": name})
        if new and sink is not None:
            sink.endpoints_found(new)
