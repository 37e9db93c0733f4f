"""Settings: one TOML file, validated once at the edge, errors that name the file and the key."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops_console import locations
from mlops_console.core import secrets
from mlops_console.core.templates import env_name, quoted_placeholders

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as "500ms", "30s", "15m", "1h", "1d"."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 30, "30s", "15m" or "1h"')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(f'expected a duration such as 30, "30s", "15m" or "1h", got {value!r}')


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _check_http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value)
    # The value is not echoed: it may carry credentials.
    if parsed.scheme not in ("http", "https"):
        got = f"scheme {parsed.scheme!r}" if parsed.scheme else "no scheme"
        raise ValueError(f"expected an http:// or https:// URL with a host, got {got}")
    if not parsed.hostname:
        raise ValueError("expected an http:// or https:// URL with a host, got no host")
    return value


def _check_lazy(value: str | None, check: Callable[[str], object]) -> str | None:
    """Check a value whose `${VAR}` references are resolved only when used: now if they can be."""
    if value is not None and not secrets.missing(value):
        check(secrets.expand(value))
    return value


class RegistrySettings(_Section):
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


class StoreSettings(_Section):
    path: Path = Field(default_factory=locations.default_store_path)
    """SQLite file holding alerts, events, notifications and the audit trail."""
    lock_timeout: Duration = Field(default=10.0, ge=0, le=3600)
    """Seconds a command (ack, silence, promote...) waits for another process's write lock before it
    fails; `watch` waits as long as it takes and says so this often."""


class DeploySettings(_Section):
    command: str | None = None
    """Shell command run after a promote or rollback. Placeholders (`{model}`, `{version}`...) are replaced
    by their shell-quoted values and must stand unquoted; the hook's environment has them as
    `$MLOPS_MODEL`, `$MLOPS_VERSION`... `${VAR}` references stay unexpanded until the hook runs."""
    webhook: str | None = None
    """URL that receives a POST with model, alias and version as JSON (placeholders URL-encoded)."""
    timeout: Duration = 120.0
    """Seconds the hook may run."""
    verify_timeout: Duration = 90.0
    """Seconds to wait for the endpoint to be healthy (and serve the new version) afterwards."""

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _check_lazy(value, _check_http_url)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        quoted = quoted_placeholders(value or "")
        if quoted:
            name = quoted[0]
            raise ValueError(
                f"placeholder {{{name}}} is inside quotes (or after a backslash): its value is shell-quoted "
                f"already, and a value such as x'; reboot; ' would end your quotes and run; write it "
                f'unquoted, {{{name}}}, or use "${env_name(name)}" in double quotes'
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> DeploySettings:
        if bool(self.command) == bool(self.webhook):
            raise ValueError("set exactly one of `command` or `webhook`")
        return self


class MetricNames(_Section):
    """Names of the Prometheus series an endpoint exposes. These defaults match `mlops-console serve`;
    each adapter has its own for its stack, and the keys set here override them one by one."""

    requests: str = "http_requests_total"
    latency: str = "http_request_duration_seconds"
    status_label: str = "status"
    failures: str | None = None
    """A counter of failed requests kept apart from `requests`, which then counts successes only
    (MLServer, Triton); `status_label` is not used then."""
    match: dict[str, str] = {"handler": "/invocations"}
    """Only samples carrying these labels count (e.g. the inference route)."""
    latency_match: dict[str, str] | None = None
    """Labels the latency histogram's samples must carry instead of `match`, for stacks whose request
    counters and latency histogram are labelled differently (MLServer: by model, and by route)."""


class EndpointSettings(_Section):
    name: str = Field(min_length=1, max_length=200)
    url: str
    adapter: str = "mlflow"
    """Adapter plugin name: `mlflow` (`mlflow models serve` protocol), `oip` (Open Inference Protocol:
    MLServer, Triton, KServe), `bentoml`, `torchserve`, `generic`, or a third-party one."""
    model: str | None = None
    """Registered model this endpoint serves."""
    alias: str | None = None
    """Alias it should serve (default: the registry's default alias when `model` is set)."""
    interval: Duration = Field(default=5.0, gt=0)
    timeout: Duration = Field(default=2.0, gt=0)
    metrics_url: str | None = None
    """Prometheus `/metrics` URL; gives throughput, error ratio and latency quantiles of real traffic."""
    metrics: MetricNames = MetricNames()
    payload: dict[str, Any] | str | None = None
    """Synthetic `/invocations` body; default: the model version's `serving_input_example.json`."""
    path: str = "/"
    """`generic` adapter: path probed with GET."""
    expect_status: int = Field(default=200, ge=100, le=599)
    """`generic` adapter: status that counts as healthy."""
    expect_body: str | None = None
    """`generic` adapter: text the body must contain."""
    served_model: str | None = None
    """Name of the model on the serving stack (`oip`, `torchserve`, `bentoml` route); default `model`."""
    served_version: str | None = None
    """`oip`, `torchserve`: probe this version of the served model rather than its default one."""
    management_url: str | None = None
    """`torchserve`: the management API (worker status and loaded version), e.g. http://host:8081."""
    load_timeout: Duration = Field(default=120.0, gt=0)
    """How long a server that answers but is still loading its model shows as `loading` before it
    counts as down."""
    deploy: DeploySettings | None = None
    """How to redeploy this endpoint after a promote or rollback."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value.rstrip("/")) or value

    @field_validator("metrics_url")
    @classmethod
    def _metrics_url(cls, value: str | None) -> str | None:
        return _check_http_url(value)

    @field_validator("management_url")
    @classmethod
    def _management_url(cls, value: str | None) -> str | None:
        return _check_http_url(value.rstrip("/") if value else None)

    @model_validator(mode="after")
    def _alias_needs_model(self) -> EndpointSettings:
        if self.alias and not self.model:
            raise ValueError("`alias` needs `model`")
        return self


class NotificationSettings(_Section):
    # Only `url` names the key in a config file; `template` is the attribute.
    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    template: str = Field(alias="url", min_length=1)
    """Any apprise URL (`json://`, `slack://`, `mailto://`, `pagerduty://`, `ntfy://`...), as written:
    `${VAR}` references unexpanded. This (redacted) is what is stored, logged and shown."""
    min_severity: Severity = "info"
    endpoints: list[str] = ["*"]
    """Glob patterns of endpoint names routed to this channel."""

    @property
    def url(self) -> str:
        """The URL to deliver to, `${VAR}` expanded now; `secrets.MissingVariable` when one is unset."""
        return secrets.expand(self.template)

    def routes(self, endpoint: str, severity: str) -> bool:
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity] and any(
            fnmatch.fnmatchcase(endpoint, pattern) for pattern in self.endpoints
        )


RuleName = Literal[
    "down", "latency_p95", "error_ratio", "throughput_drop", "invalid_prediction", "version_mismatch"
]


class RuleSettings(_Section):
    """One `[[rules]]` table: overrides a built-in rule for the endpoints matching `endpoint`."""

    rule: RuleName
    endpoint: str = "*"
    """Glob over endpoint names; later tables win over earlier ones."""
    enabled: bool | None = None
    threshold: float | None = None
    for_: Duration | None = Field(default=None, alias="for")
    severity: Severity | None = None


class NotifySettings(_Section):
    renotify_after: Duration = 1800.0
    """Remind about a firing alert nobody acknowledged after this long (0 disables)."""
    max_attempts: int = Field(default=8, ge=1)
    """Delivery attempts per notification before it is given up (recorded as dead)."""
    timeout: Duration = 10.0
    """Seconds one delivery attempt may take."""


class TuiSettings(_Section):
    keymap: dict[str, str] = {}
    """Binding id to keys, e.g. `{ "alerts.ack" = "A" }`."""


class Settings(_Section):
    registry: RegistrySettings = RegistrySettings()
    store: StoreSettings = Field(default_factory=StoreSettings)
    endpoints: list[EndpointSettings] = []
    notifications: list[NotificationSettings] = []
    rules: list[RuleSettings] = []
    notify: NotifySettings = NotifySettings()
    tui: TuiSettings = TuiSettings()

    source: Path | None = Field(default=None, exclude=True)
    """The file these settings came from (not a config key)."""

    def endpoint(self, name: str) -> EndpointSettings:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)

    def alias_for(self, model: str) -> str:
        return self.registry.aliases.get(model, self.registry.default_alias)

    def lazy_values(self) -> list[tuple[str, str]]:
        """`(key, text as written)` of every value whose `${VAR}` references are resolved when used."""
        out = [(f"notifications[{i}].url", n.template) for i, n in enumerate(self.notifications)]
        for index, endpoint in enumerate(self.endpoints):
            if endpoint.deploy is not None:
                for field in ("command", "webhook"):
                    value = getattr(endpoint.deploy, field)
                    if value:
                        out.append((f"endpoints[{index}].deploy.{field}", value))
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


# Keys whose `${VAR}` references stay in the settings as written and are expanded where they are used
# (paging, running a hook): commands that neither page nor deploy run without those secrets, and the
# secret never reaches what is stored or shown.
_LAZY_KEY = re.compile(r"^(notifications\[\d+\]\.url|endpoints\[\d+\]\.deploy\.(command|webhook))$")


def _expand_env(value: Any, key: str, missing: list[str], used: dict[str, str]) -> Any:
    if isinstance(value, str):
        if _LAZY_KEY.match(key):
            used.update(secrets.env_values(value))
            return value

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                missing.append(f"{key}: environment variable ${{{name}}} is not set")
                return ""
            used[name] = os.environ[name]
            return os.environ[name]

        return secrets.ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{key}.{k}" if key else k, missing, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{key}[{i}]", missing, used) for i, v in enumerate(value)]
    return value


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            # pydantic reports tagged union / validator branches as extra loc parts; keep real keys only
            if part in ("function-after", "function-before") or part.startswith("function-"):
                continue
            out += f".{part}" if out else part
    return out or "(top level)"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _semantic_problems(settings: Settings, known_adapters: set[str] | None) -> list[str]:
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, endpoint in enumerate(settings.endpoints):
        if endpoint.name in seen:
            problems.append(
                f"endpoints[{index}].name: duplicate endpoint name {endpoint.name!r} "
                f"(also endpoints[{seen[endpoint.name]}])"
            )
        seen.setdefault(endpoint.name, index)
        if known_adapters is not None and endpoint.adapter not in known_adapters:
            problems.append(
                f"endpoints[{index}].adapter: unknown adapter {endpoint.adapter!r} "
                f"(installed: {', '.join(sorted(known_adapters)) or 'none'})"
            )
        if endpoint.timeout > max(endpoint.interval, 0) * 10:
            problems.append(f"endpoints[{index}].timeout: {endpoint.timeout}s is over ten intervals")
    for index, rule in enumerate(settings.rules):
        if rule.endpoint != "*" and not any(fnmatch.fnmatchcase(n, rule.endpoint) for n in seen):
            problems.append(f"rules[{index}].endpoint: {rule.endpoint!r} matches no endpoint")
    for index, notification in enumerate(settings.notifications):
        url = notification.template if secrets.missing(notification.template) else notification.url
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if not scheme and not url.startswith("${"):
            problems.append(f"notifications[{index}].url: not an apprise URL (expected scheme://...)")
    return problems


def parse_settings(
    data: dict[str, Any],
    path: Path | None = None,
    known_adapters: set[str] | None = None,
    *,
    require_env: bool = True,
) -> Settings:
    """Validate a decoded TOML document; raise ConfigError listing every problem found.

    `require_env=False` accepts unset variables in notification URLs and deploy hooks (resolved where
    they are used); other keys need theirs either way.
    """
    missing: list[str] = []
    used: dict[str, str] = {}
    data = _expand_env(data, "", missing, used)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_key_path(e['loc'])}: {_message(e)}" for e in exc.errors()]
        raise ConfigError(path, _scrubbed(missing + problems, used)) from None
    problems = missing + (settings.missing_env() if require_env else [])
    problems += _semantic_problems(settings, known_adapters)
    if problems:
        raise ConfigError(path, _scrubbed(problems, used))
    settings.source = path
    return settings


def _scrubbed(problems: list[str], used: dict[str, str]) -> list[str]:
    """Problems never echo a value that came from the environment (it may be a token)."""
    return [secrets.scrub(problem, used) for problem in problems]


def load_settings(
    path: Path | None = None, known_adapters: set[str] | None = None, *, require_env: bool = True
) -> Settings:
    """Read and validate the config file (`--config`, `$MLOPS_CONSOLE_CONFIG`, user config dir).

    `require_env=False` is for commands that neither page nor deploy: see `parse_settings`.
    """
    path = Path(path) if path else locations.default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path, ["file not found (pass --config PATH or set $MLOPS_CONSOLE_CONFIG)"]
        ) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror}"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_settings(data, path, known_adapters, require_env=require_env)
