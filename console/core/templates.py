"""Deploy hook templates: `{placeholder}` and `${VAR}` substitution in one pass, and the quoting rule.

A model name comes from whoever can register models, and an actor from `--by`: both are hostile input
to a shell. Each placeholder is replaced once by its shell-quoted (or URL-encoded) value, in a single
pass, so a value that itself contains `{actor}` or `${HOME}` is never expanded again. A quoted value is
only safe as a bare word: inside '...' or "..." (or after a backslash) the quotes it carries would end
the surrounding ones instead, so such commands are refused when the config is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from mlops_console.core.secrets import MissingVariable, missing

PLACEHOLDERS = ("model", "alias", "version", "endpoint", "action", "actor", "from_version")
"""Placeholders a hook template may use; each is also in the hook's environment as `MLOPS_<NAME>`."""

_TOKEN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\{(" + "|".join(PLACEHOLDERS) + r")\}")


def env_name(placeholder: str) -> str:
    return f"MLOPS_{placeholder.upper()}"


def render(template: str, values: dict[str, str], quoting: Callable[[str], str], *, env: bool) -> str:
    """`template` with each `{placeholder}` replaced by `quoting(value)`, in one pass.

    `env=True` replaces each `${VAR}` from the environment too (the text that runs; MissingVariable when
    one is unset); `env=False` leaves the references as written (the text that is shown and stored).
    """
    if env:
        absent = missing(template)
        if absent:
            raise MissingVariable(absent)

    def replace(match: re.Match[str]) -> str:
        variable, placeholder = match.groups()
        if variable is not None:
            return os.environ[variable] if env else match.group()
        if placeholder not in values:
            return match.group()
        return quoting(values[placeholder])

    return _TOKEN.sub(replace, template)


def quoted_placeholders(command: str) -> list[str]:
    """Placeholders of a shell command that are not a bare word: inside quotes or after a backslash."""
    found: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(command):
        char = command[index]
        token = _TOKEN.match(command, index)
        if token:
            if token.group(2) and quote is not None:
                found.append(token.group(2))
            index = token.end()
        elif quote == "'":
            quote = None if char == "'" else quote
            index += 1
        elif char == "\\":
            escaped = _TOKEN.match(command, index + 1)
            if quote is None and escaped and escaped.group(2):
                found.append(escaped.group(2))
                index = escaped.end()
            else:
                # Outside quotes a backslash escapes any character; inside "..." only these.
                index += 2 if quote is None or command[index + 1 : index + 2] in '$`"\\\n' else 1
        else:
            if char == '"':
                quote = None if quote == '"' else '"'
            elif char == "'" and quote is None:
                quote = "'"
            index += 1
    return list(dict.fromkeys(found))
