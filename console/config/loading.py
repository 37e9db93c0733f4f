"""Reading a config file: `${VAR}` expansion, validation, and every problem named by file and key."""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mlops_console import locations
from mlops_console.config.settings import ConfigError, Settings
from mlops_console.core import secrets

# Keys whose `${VAR}` references stay in the settings as written and are expanded where they are used
# (paging, running a hook): commands that neither page nor deploy run without those secrets, and the
# secret never reaches what is stored or shown.
_LAZY_KEY = re.compile(
    r"^(notifications\[\d+\]\.url|endpoints\[\d+\]\.deploy\.(command|webhook)|watch\.heartbeat_url"
    r"|registry\.(username|password|token))$"
)


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
        reference = endpoint.drift.reference if endpoint.drift else None
        if reference and reference.startswith("artifact:"):
            if not endpoint.model:
                problems.append(
                    f"endpoints[{index}].drift.reference: an artifact of the served version's run needs "
                    "the endpoint's `model`"
                )
            elif not settings.registry.tracking_uri:
                problems.append(
                    f"endpoints[{index}].drift.reference: an artifact is found through the registry, and "
                    "registry.tracking_uri is not set"
                )
        if endpoint.timeout > max(endpoint.interval, 0) * 10:
            problems.append(f"endpoints[{index}].timeout: {endpoint.timeout}s is over ten intervals")
    for index, endpoint in enumerate(settings.endpoints):
        if endpoint.source == "prometheus" and settings.prometheus is None:
            problems.append(
                f'endpoints[{index}].source: "prometheus" needs a [prometheus] section with its url'
            )
        if endpoint.health_from == "prometheus" and settings.source_of(endpoint) != "prometheus":
            problems.append(f'endpoints[{index}].health_from: "prometheus" needs source = "prometheus"')
    if settings.discover and settings.prometheus is None:
        problems.append("discover: needs a [prometheus] section with its url")
    for index, found in enumerate(settings.discover):
        if known_adapters is not None and found.adapter not in known_adapters:
            problems.append(f"discover[{index}].adapter: unknown adapter {found.adapter!r}")
    if settings.prometheus is not None and known_adapters is not None:
        for adapter in settings.prometheus.queries:
            if adapter not in known_adapters:
                problems.append(f"prometheus.queries.{adapter}: unknown adapter {adapter!r}")
    from mlops_console.core.conditions import DEFAULTS
    from mlops_console.core.conditions.detector_keys import check
    from mlops_console.core.conditions.pipelines import DEFAULTS as PIPELINE_RULES

    pipelines = _pipeline_problems(settings, problems)
    for index, rule in enumerate(settings.rules):
        # A pipeline rule's glob is over pipeline names, every other rule's over endpoint names.
        names, what = (pipelines, "pipeline") if rule.rule in PIPELINE_RULES else (seen, "endpoint")
        if rule.endpoint != "*" and not any(fnmatch.fnmatchcase(n, rule.endpoint) for n in names):
            problems.append(f"rules[{index}].endpoint: {rule.endpoint!r} matches no {what}")
        default = DEFAULTS[rule.rule].detector
        for key, problem in check(
            rule.rule, rule.detector, default, rule.params, rule.persistence, rule.threshold
        ):
            problems.append(f"rules[{index}].{key}: {problem}")
    problems += _auto_rollback_problems(settings)
    for index, notification in enumerate(settings.notifications):
        url = notification.template if secrets.missing(notification.template) else notification.url
        scheme = url.split("://", 1)[0] if "://" in url else ""
        if not scheme and not url.startswith("${"):
            problems.append(f"notifications[{index}].url: not an apprise URL (expected scheme://...)")
    return problems


def _pipeline_problems(settings: Settings, problems: list[str]) -> dict[str, int]:
    """Problems of `[[pipelines]]` no single table can see; returns the pipelines' names."""
    names: dict[str, int] = {}
    for index, pipeline in enumerate(settings.pipelines):
        if pipeline.name in names:
            problems.append(
                f"pipelines[{index}].name: duplicate pipeline name {pipeline.name!r} "
                f"(also pipelines[{names[pipeline.name]}])"
            )
        names.setdefault(pipeline.name, index)
    if settings.pipelines and not settings.registry.tracking_uri:
        problems.append("pipelines: their runs are read from MLflow, and registry.tracking_uri is not set")
    return names


def _auto_rollback_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    watched: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(settings.auto_rollback):
        key = (entry.model, settings.auto_rollback_alias(entry))
        if key in watched:
            problems.append(
                f"auto_rollback[{index}].model: {key[0]!r} alias {key[1]!r} is watched twice "
                f"(also auto_rollback[{watched[key]}])"
            )
        watched.setdefault(key, index)
        if not settings.registry.tracking_uri:
            problems.append(
                f"auto_rollback[{index}].model: rolling back needs the registry, and "
                "registry.tracking_uri is not set"
            )
        served = [
            e.name
            for e in settings.endpoints
            if e.model == entry.model and (e.alias or settings.alias_for(entry.model)) == key[1]
        ]
        if not served:
            problems.append(
                f"auto_rollback[{index}].model: no endpoint serves {key[0]!r} through alias {key[1]!r}"
            )
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
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text (byte {exc.start}: {exc.reason})"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return parse_settings(data, path, known_adapters, require_env=require_env)
