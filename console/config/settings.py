"""`Settings`: the whole validated config, one attribute per section, and `ConfigError`."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import Field, PrivateAttr

from mlops_console.config.auto_rollback import AutoRollbackSettings
from mlops_console.config.endpoints import EndpointSettings
from mlops_console.config.notifications import NotificationSettings, NotifySettings
from mlops_console.config.pipelines import PIPELINE_PREFIX, PipelineSettings
from mlops_console.config.prometheus import DiscoverSettings, PrometheusSettings
from mlops_console.config.registry import RegistrySettings
from mlops_console.config.rules import RuleSettings
from mlops_console.config.slo import SloSettings
from mlops_console.config.store import StoreSettings
from mlops_console.config.tui import TuiSettings
from mlops_console.config.values import Section
from mlops_console.config.watch import WatchSettings
from mlops_console.config.web import WebSettings
from mlops_console.core import secrets


class Settings(Section):
    registry: RegistrySettings = RegistrySettings()
    store: StoreSettings = Field(default_factory=StoreSettings)
    endpoints: list[EndpointSettings] = []
    notifications: list[NotificationSettings] = []
    rules: list[RuleSettings] = []
    notify: NotifySettings = NotifySettings()
    tui: TuiSettings = TuiSettings()
    slo: SloSettings = SloSettings()
    """Objectives every endpoint has unless its own `slo` sets another."""
    web: WebSettings = WebSettings()
    watch: WatchSettings = WatchSettings()
    prometheus: PrometheusSettings | None = None
    discover: list[DiscoverSettings] = []
    pipelines: list[PipelineSettings] = []
    """Training and batch-scoring jobs whose MLflow runs are watched (see `config/pipelines`)."""
    auto_rollback: list[AutoRollbackSettings] = []

    def source_of(self, endpoint: EndpointSettings) -> str:
        """`probe` or `prometheus`: where the endpoint's figures come from."""
        if endpoint.source is not None:
            return endpoint.source
        return self.prometheus.default_source if self.prometheus is not None else "probe"

    def probes_health(self, endpoint: EndpointSettings) -> bool:
        """Whether the console probes the endpoint itself (else health is Prometheus' `up{}`)."""
        if self.source_of(endpoint) == "probe":
            return True
        return endpoint.health_from == "probe"

    source: Path | None = Field(default=None, exclude=True)
    """The file these settings came from (not a config key)."""

    _endpoint_index: _EndpointIndex | None = PrivateAttr(default=None)

    def endpoint(self, name: str) -> EndpointSettings:
        """The endpoint called `name` (the first of that name); KeyError if there is none.

        A mapping lookup: the deploy fan-out and the detail screens ask for one of thousands. The
        mapping is rebuilt when `endpoints` is replaced or changed in place (tests do both)."""
        endpoints = self.endpoints
        index = self._endpoint_index
        if index is None or not index.describes(endpoints):
            index = self._endpoint_index = _EndpointIndex(endpoints)
        found = index.by_name.get(name)
        if found is not None and endpoints[found[0]] is found[1]:
            return found[1]
        # An item replaced in place since the mapping was built: index again, once.
        index = self._endpoint_index = _EndpointIndex(endpoints)
        found = index.by_name.get(name)
        if found is None:
            raise KeyError(name)
        return found[1]

    def slo_for(self, name: str) -> SloSettings:
        """The objectives of endpoint `name`: the defaults under its own `slo` keys."""
        try:
            own = self.endpoint(name).slo
        except KeyError:
            own = None
        return self.slo.merged(own)

    def runbook_for(self, rule: str, endpoint: str) -> str | None:
        """The runbook of an alert: the last `[[rules]]` table for this rule whose glob matches the
        endpoint and that sets one, else the endpoint's own. A pipeline's alerts (`pipeline:NAME`) match
        the globs by the pipeline's name."""
        pipeline = endpoint.startswith(PIPELINE_PREFIX)
        if pipeline:
            endpoint = endpoint.removeprefix(PIPELINE_PREFIX)
        for override in reversed(self.rules):
            if (
                override.runbook
                and override.rule == rule
                and fnmatch.fnmatchcase(endpoint, override.endpoint)
            ):
                return override.runbook
        if pipeline:
            return None
        try:
            return self.endpoint(endpoint).runbook
        except KeyError:
            return None

    def alias_for(self, model: str) -> str:
        return self.registry.aliases.get(model, self.registry.default_alias)

    def auto_rollback_alias(self, entry: AutoRollbackSettings) -> str:
        """The alias an `[[auto_rollback]]` table watches."""
        return entry.alias or self.alias_for(entry.model)

    def lazy_values(self) -> list[tuple[str, str]]:
        """`(key, text as written)` of every value whose `${VAR}` references are resolved when used."""
        out = [(f"notifications[{i}].url", n.template) for i, n in enumerate(self.notifications)]
        out += [(f"registry.{key}", value) for key, value in self.registry.credentials()]
        for index, endpoint in enumerate(self.endpoints):
            if endpoint.deploy is not None:
                for field in ("command", "webhook"):
                    value = getattr(endpoint.deploy, field)
                    if value:
                        out.append((f"endpoints[{index}].deploy.{field}", value))
        if self.watch.heartbeat_url:
            out.append(("watch.heartbeat_url", self.watch.heartbeat_url))
        return out

    def missing_env(self, prefix: str = "") -> list[str]:
        """`key: environment variable ${VAR} is not set` for each unset reference under `prefix`."""
        return [
            f"{key}: environment variable ${{{name}}} is not set"
            for key, value in self.lazy_values()
            if key.startswith(prefix)
            for name in secrets.missing(value)
        ]

    def require_paging(self) -> None:
        """Raise ConfigError naming each notification URL whose `${VAR}` is unset (for whatever pages)."""
        problems = self.missing_env("notifications")
        if problems:
            raise ConfigError(self.source, problems)


class _EndpointIndex:
    """Endpoint name to (position, settings) of one `endpoints` list, read-only. A cache, not part of
    the settings' value: any two compare equal, so `Settings` equality ignores it."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, endpoints: list[EndpointSettings]) -> None:
        self.endpoints, self.size = endpoints, len(endpoints)
        by_name: dict[str, tuple[int, EndpointSettings]] = {}
        for position, endpoint in enumerate(endpoints):
            by_name.setdefault(endpoint.name, (position, endpoint))
        self.by_name: Mapping[str, tuple[int, EndpointSettings]] = MappingProxyType(by_name)

    def describes(self, endpoints: list[EndpointSettings]) -> bool:
        return endpoints is self.endpoints and len(endpoints) == self.size

    def __eq__(self, other: Any) -> bool:
        return other is None or isinstance(other, _EndpointIndex)


@dataclass
class ConfigError(Exception):
    """A config that cannot be used; `problems` are `key: message` lines."""

    path: Path | None
    problems: list[str]

    def lines(self) -> list[str]:
        where = str(self.path) if self.path else "<config>"
        return [f"{where}: {problem}" for problem in self.problems]

    def __str__(self) -> str:
        return "\n".join(self.lines())
