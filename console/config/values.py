"""Value types every section shares: durations, severities, URLs, lazily expanded `${VAR}` strings."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, BeforeValidator, ConfigDict

from mlops_console.core import secrets

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


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def check_http_url(value: str | None) -> str | None:
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


_URL_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def check_runbook_url(value: str | None) -> str | None:
    """A runbook link: shown in pages, terminals and browsers, so an http(s) URL with a host and no
    whitespace, control or bidi characters (nothing that could garble or disguise it)."""
    if value is None:
        return None
    if _URL_UNSAFE.search(value):
        raise ValueError("expected an http:// or https:// URL without spaces or control characters")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        got = f"{value[:80]!r}" if len(value) <= 80 else f"{value[:80]!r}..."
        raise ValueError(f"expected an http:// or https:// URL with a host, got {got}")
    return value


def check_lazy(value: str | None, check: Callable[[str], object]) -> str | None:
    """Check a value whose `${VAR}` references are resolved only when used: now if they can be."""
    if value is not None and not secrets.missing(value):
        check(secrets.expand(value))
    return value
