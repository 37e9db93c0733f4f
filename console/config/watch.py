"""`[watch]`: what the headless watcher offers beyond paging: its own `/metrics`, and a heartbeat."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator

from mlops_console.config.values import Duration, Section, check_http_url, check_lazy


def parse_listen_addr(value: str) -> tuple[str, int]:
    """`(host, port)` from `HOST:PORT` (`[::1]:9464` for IPv6); ValueError saying what is wrong."""
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:9464, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"write an IPv6 address in brackets, such as [::1]:9464, got {value!r}")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"port must be a number from 0 to 65535, got {port_text!r}")
    return host, int(port_text)


class WatchSettings(Section):
    metrics_addr: str | None = None
    """`HOST:PORT` where `watch` serves its own Prometheus `/metrics` (e.g. `127.0.0.1:9464`)."""
    heartbeat_url: str | None = None
    """Called (HTTP GET) every `heartbeat_interval` while the engine is healthy: a dead-man's switch
    (healthchecks.io, Cronitor, a PagerDuty heartbeat) pages when the calls stop. `${VAR}` references
    are resolved when it is called."""
    heartbeat_interval: Duration = Field(default=60.0, gt=0)
    heartbeat_timeout: Duration = Field(default=10.0, gt=0)

    @field_validator("metrics_addr")
    @classmethod
    def _metrics_addr(cls, value: str | None) -> str | None:
        if value is not None:
            parse_listen_addr(value)
        return value

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat_url(cls, value: str | None) -> str | None:
        return check_lazy(value, check_http_url)
