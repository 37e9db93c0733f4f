"""`[registry]`: the MLflow registry the console reads and promotes through."""

from __future__ import annotations

from mlops_console.config.values import Duration, Section


class RegistrySettings(Section):
    tracking_uri: str | None = None
    """MLflow tracking URI: `sqlite:///path/mlflow.db` or `http(s)://host:5000`. Unset: no registry."""
    timeout: Duration = 5.0
    """Seconds before a registry call gives up ("registry unreachable")."""
    default_alias: str = "production"
    """Alias moved by `promote` when none is given."""
    aliases: dict[str, str] = {}
    """Per-model default alias, e.g. `{ fraud = "live" }`."""
    refresh: Duration = 30.0
    """Seconds between checks of which version each endpoint's alias points to."""
