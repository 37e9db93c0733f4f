"""What `[[discover]]` finds in Prometheus, and what an alert of a discovered endpoint that went away
says when it resolves."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import aiohttp

from mlops_console.config import DiscoverSettings, EndpointSettings
from mlops_console.core.promapi import PromClient

log = logging.getLogger("mlops_console.prometheus")


async def found_by(
    client: PromClient, http: aiohttp.ClientSession, table: DiscoverSettings, group: str, said: set[str]
) -> list[EndpointSettings]:
    """The endpoints one `[[discover]]` table finds now: one per value of `group`, named by its template.
    A target it cannot make an endpoint of is logged once (its text kept in `said`), not every round."""
    found: list[tuple[dict[str, str], str]] = []
    if table.selector is not None:
        for sample in await client.query(http, table.selector):
            labels = dict(sample.labels)
            found.append((labels, f"http://{labels.get('instance', labels.get(group, ''))}"))
    else:
        wanted = table.targets or {}
        for target in await client.targets(http):
            if all(target.labels.get(k) == v for k, v in wanted.items()):
                found.append((dict(target.labels), target.scrape_url))
    out, seen = [], set()
    for labels, url in found:
        key = labels.get(group)
        if not key or key in seen:
            continue
        seen.add(key)
        try:
            name = table.name.format_map(labels)
            endpoint = EndpointSettings(
                name=name,
                url=_origin(url) or "http://unknown.invalid",
                adapter=table.adapter,
                model=table.model,
                alias=table.alias,
                source="prometheus",
                prometheus_id=key,
            )
        except (KeyError, ValueError, IndexError) as exc:
            text = f"[[discover]] name {table.name!r}: {exc}"
            if text not in said:
                said.add(text)
                log.warning("%s", text, extra={"event": "discover"})
            continue
        out.append(endpoint)
    return out


def gone_reason(since: float, grace: float) -> str:
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    return (
        f"Resolved because the endpoint is no longer discovered in Prometheus: no [[discover]] table has "
        f"found its target since {at} ({grace:.0f} s grace). Nothing is known of its state after that."
    )


def gone_after_restart_reason(last_seen: float | None, since: float, grace: float) -> str:
    def at(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))

    seen = f"last seen by the watcher at {at(last_seen)}; " if last_seen else ""
    return (
        f"Resolved because the endpoint is no longer discovered in Prometheus: {seen}after the watcher "
        f"restarted, no [[discover]] table found its target from {at(since)} on ({grace:.0f} s grace). "
        f"Nothing is known of its state after that."
    )


def _origin(url: str) -> str | None:
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return None
    return f"{parsed.scheme}://{parsed.netloc.rsplit('@', 1)[-1]}"
