"""Secrets in config values: `${VAR}` references resolved where they are used, and redaction.

Tokens reach the console through `${VAR}` references in notification URLs and deploy hooks, and
through literal tokens people paste into apprise URLs. The config text (references unexpanded) is what
the console stores, logs and shows; the expanded value exists only at the moment it is used. Anything
that could still echo a secret (an apprise error, a hook's output, a config error) goes through
`scrub()` with the values it must not show.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "****"
MIN_SECRET_CHARS = 4
"""Shorter values are not scrubbed from free text: replacing every "1" would garble it, and hide nothing."""


class MissingVariable(LookupError):
    """A `${VAR}` reference whose variable is not set in the environment."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(names)
        self.names = names

    def __str__(self) -> str:
        return ", ".join(f"${{{name}}}" for name in self.names) + " not set"


def references(template: str) -> list[str]:
    """Names of the variables `template` refers to, in order, each once."""
    return list(dict.fromkeys(ENV_REF.findall(template)))


def missing(template: str) -> list[str]:
    return [name for name in references(template) if name not in os.environ]


def expand(template: str) -> str:
    """`template` with every `${VAR}` replaced from the environment; MissingVariable if one is unset."""
    absent = missing(template)
    if absent:
        raise MissingVariable(absent)
    return ENV_REF.sub(lambda match: os.environ[match.group(1)], template)


def env_values(template: str) -> dict[str, str]:
    """`{name: value}` of the set variables `template` refers to: what `scrub` must hide."""
    return {name: os.environ[name] for name in references(template) if name in os.environ}


def scrub(text: str, secrets: Mapping[str, str] | Iterable[str]) -> str:
    """`text` without any of `secrets`; a mapping `{name: value}` shows `${name}` in the value's place.

    Percent-encoded and repr-escaped forms are hidden too (apprise and error messages produce both).
    """
    labelled = secrets.items() if isinstance(secrets, Mapping) else ((None, value) for value in secrets)
    replacements: dict[str, str] = {}
    for name, value in labelled:
        if len(value) < MIN_SECRET_CHARS:
            continue
        label = f"${{{name}}}" if name else MASK
        for form in (value, quote(value, safe=""), quote(value), repr(value)[1:-1]):
            replacements.setdefault(form, label)
    for form in sorted(replacements, key=len, reverse=True):
        text = text.replace(form, replacements[form])
    return text


# -- URLs ------------------------------------------------------------------------------------------------
# Path segments of custom webhooks (`json://host/hooks/TOKEN`) carry tokens, and apprise's privacy mode
# shows them. Only parts that cannot be a token stay visible: host names (most apprise schemes put a
# token where the host goes: `slack://TOKEN/...`, so a host must look like one, unless the scheme is a
# plain webhook), numeric ports, `${VAR}` references, and short lower-case words ("hook", "api",
# "team-a"). ntfy topics are the password of a public topic: always hidden.
_WORD = re.compile(r"[a-z]+(?:[-_.][a-z]+)*")
_HOSTNAME = re.compile(r"(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+|localhost|\[[0-9A-Fa-f:.]+\]")
_WORD_MAX = 16
TOPIC_SCHEMES = frozenset({"ntfy", "ntfys"})
WEBHOOK_SCHEMES = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})


def _visible_word(part: str, *, topic: bool = False) -> bool:
    rest = ENV_REF.sub("", part)
    return not rest or (not topic and len(rest) <= _WORD_MAX and bool(_WORD.fullmatch(rest)))


def _visible_host(host: str, scheme: str) -> bool:
    if scheme in WEBHOOK_SCHEMES:
        return True
    return not ENV_REF.sub("", host) or bool(_HOSTNAME.fullmatch(host))


def _split(url: str) -> dict[str, str] | None:
    if "://" not in url:
        return None
    scheme, rest = url.split("://", 1)
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    host, port = hostport, ""
    if not hostport.endswith("]"):
        head, colon, tail = hostport.rpartition(":")
        if colon and head:
            host, port = head, tail
    return {
        "scheme": scheme,
        "userinfo": userinfo if at else "",
        "host": host,
        "port": port,
        "path": slash + path,
        "query": query,
        "fragment": fragment,
    }


def _redacted_parts(url: str) -> tuple[str, list[str]] | None:
    """(the URL with secret parts masked, the secret parts themselves)."""
    parts = _split(url)
    if parts is None:
        return None
    hidden: list[str] = []

    def keep(value: str, visible: bool) -> str:
        if visible or not value:
            return value
        hidden.extend((value, unquote(value)))
        return MASK

    scheme = parts["scheme"].lower()
    topic = scheme in TOPIC_SCHEMES
    out = parts["scheme"] + "://"
    if parts["userinfo"]:
        for piece in parts["userinfo"].split(":", 1):
            keep(piece, False)
        out += MASK + "@"
    out += keep(parts["host"], _visible_host(parts["host"], scheme))
    if parts["port"]:
        out += ":" + keep(parts["port"], parts["port"].isdigit() or _visible_word(parts["port"]))
    segments = parts["path"].split("/")
    out += "/".join(keep(segment, _visible_word(segment, topic=topic)) for segment in segments)
    if parts["query"]:
        # Keys as written (apprise's `+Header`, `-param`...); a value only when it is a `${VAR}`.
        pairs = [pair.partition("=") for pair in parts["query"].split("&") if pair]
        out += "?" + "&".join(
            key + equals + keep(value, _visible_word(value, topic=True)) for key, equals, value in pairs
        )
    if parts["fragment"]:
        out += "#" + keep(parts["fragment"], _visible_word(parts["fragment"], topic=topic))
    return out, [secret for secret in hidden if secret]


def redact_url(url: str) -> str:
    """`url` safe to show, log and store: no credentials, no token-like host, path, query or fragment."""
    redacted = _redacted_parts(url)
    return redacted[0] if redacted else "<invalid url>"


def url_secrets(url: str) -> list[str]:
    """The parts `redact_url` hides, to scrub from messages that may quote the URL."""
    redacted = _redacted_parts(url)
    return redacted[1] if redacted else [url]
