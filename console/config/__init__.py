"""Settings: one TOML file, validated once at the edge, errors that name the file and the key.

One module per section (`registry`, `store`, `endpoints`, `notifications`, `rules`, `tui`), the root
`Settings` in `settings`, reading and validating a file in `loading`. A new section is a new module
and one attribute of `Settings`.
"""

from __future__ import annotations

from mlops_console.config.auto_rollback import AutoRollbackSettings
from mlops_console.config.endpoints import DeploySettings, EndpointSettings, MetricNames
from mlops_console.config.loading import load_settings, parse_settings
from mlops_console.config.notifications import NotificationSettings, NotifySettings
from mlops_console.config.prometheus import DiscoverSettings, PrometheusQueries, PrometheusSettings
from mlops_console.config.quality import DriftSettings, InferenceLogSettings
from mlops_console.config.registry import RegistrySettings
from mlops_console.config.rules import RuleSettings
from mlops_console.config.settings import ConfigError, Settings
from mlops_console.config.store import StoreSettings
from mlops_console.config.tui import TuiSettings
from mlops_console.config.values import SEVERITY_RANK, Duration, Severity, parse_duration
from mlops_console.config.watch import WatchSettings, parse_listen_addr

__all__ = [
    "SEVERITY_RANK",
    "AutoRollbackSettings",
    "ConfigError",
    "DeploySettings",
    "DiscoverSettings",
    "DriftSettings",
    "Duration",
    "EndpointSettings",
    "InferenceLogSettings",
    "MetricNames",
    "NotificationSettings",
    "NotifySettings",
    "PrometheusQueries",
    "PrometheusSettings",
    "RegistrySettings",
    "RuleSettings",
    "Settings",
    "Severity",
    "StoreSettings",
    "TuiSettings",
    "WatchSettings",
    "load_settings",
    "parse_duration",
    "parse_listen_addr",
    "parse_settings",
]
