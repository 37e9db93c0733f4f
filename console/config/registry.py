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
    username: str | None = None
    """User name for an MLflow server with authentication, usually a `${VAR}` reference (resolved when
    the registry is first used). Unset: MLflow's own `MLFLOW_TRACKING_USERNAME`, if set."""
    password: str | None = None
    """Its password, a `${VAR}` reference (never the password itself in a shared file). Unset:
    `MLFLOW_TRACKING_PASSWORD`."""
    token: str | None = None
    """A bearer token instead of user and password, a `${VAR}` reference. Unset: `MLFLOW_TRACKING_TOKEN`."""
    refresh: Duration = 30.0
    """Seconds between checks of which version each endpoint's alias points to."""

    def credentials(self) -> list[tuple[str, str]]:
        """`(key, text as written)` of the credentials given here (`${VAR}` references unexpanded)."""
        given = (("username", self.username), ("password", self.password), ("token", self.token))
        return [(key, value) for key, value in given if value]
