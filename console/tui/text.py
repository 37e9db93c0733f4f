"""Turning untrusted data into display text.

Textual parses plain `str` cells as markup and a terminal obeys escape sequences, so every string that
came from an endpoint, the registry, the store or the config is shown through `safe_text()`: escape
sequences and control characters are removed, and the result is a `rich.text.Text`, never markup.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from mlops_console.core.formatting import DASH as DASH
from mlops_console.core.limits import displayable_epoch
from mlops_console.core.text import BIDI

# CSI / OSC / DCS / single-character escapes, then any remaining C0/C1 control character.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC/DCS/SOS/PM/APC ... BEL or ST
    r"|\x1b[@-Z\\-_]"  # two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f" + BIDI + "]")
_WHITESPACE = re.compile(r"[\t\r\n]+")


def clean(value: object, *, multiline: bool = False, limit: int | None = None) -> str:
    """The printable part of `value`: no escape sequences, no control characters.

    Single-line by default (tabs and newlines become one space); `multiline=True` keeps newlines.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _ESCAPES.sub("", text)
    if multiline:
        lines = text.replace("\r\n", "\n").replace("\t", "    ").split("\n")
        text = "\n".join(_CONTROL.sub("", line) for line in lines)
    else:
        text = _CONTROL.sub("", _WHITESPACE.sub(" ", text))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


def safe_text(value: object, style: str = "", *, multiline: bool = False, limit: int | None = None) -> Text:
    """`value` as literal display text: markup like `[bold]` and escape sequences are shown inert."""
    return Text(clean(value, multiline=multiline, limit=limit), style=style, end="")


def join(parts: Iterable[Text | str], sep: str = " ") -> Text:
    """Join Text parts; plain `str` parts are treated as literal text too."""
    out = Text(end="")
    for index, part in enumerate(parts):
        if index:
            out.append(sep)
        out.append_text(part if isinstance(part, Text) else safe_text(part))
    return out


PENDING_SUFFIX = " (pending)"


def firing_and_pending(rules: Iterable[str]) -> tuple[list[str], list[str]]:
    """An endpoint's `firing` list split into rules firing and rules pending (held, `for` not elapsed)."""
    firing, pending = [], []
    for rule in rules:
        if rule.endswith(PENDING_SUFFIX):
            pending.append(rule.removesuffix(PENDING_SUFFIX))
        else:
            firing.append(rule)
    return firing, pending


# -- times and metric values for display (figures: `mlops_console.core.formatting`) ----------------


def fmt_time(at: float | None, now: float | None = None) -> str:
    """Local time: `HH:MM:SS` today, `Mon DD HH:MM` otherwise."""
    if at is None:
        return DASH
    local = time.localtime(displayable_epoch(at))
    if now is not None and time.localtime(now)[:3] == local[:3]:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%b %d %H:%M", local)


def fmt_metric(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return clean(value)


def version_record(info: Any, now: float) -> Table:
    """The registry's record of a model version (a `VersionInfo`), as the endpoint detail shows it."""
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("k", style="dim")
    table.add_column("v")
    table.add_row("version", safe_text(f"{info.model} v{info.version}", limit=80))
    table.add_row("status", safe_text(info.status))
    table.add_row("aliases", safe_text(", ".join(info.aliases) or DASH, limit=80))
    table.add_row("created", fmt_time(info.created_at, now))
    table.add_row("run", safe_text(info.run_id or DASH, limit=40))
    for metric, value in sorted(info.metrics.items())[:10]:
        table.add_row(safe_text(metric, limit=30), Text(fmt_metric(value)))
    return table


_SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int) -> str:
    """A block-character sparkline of the last `width` values, scaled to their own range."""
    data = [v for v in values[-width:] if v is not None]
    if not data:
        return ""
    low, high = min(data), max(data)
    span = high - low
    if span <= 0:
        return _SPARK[0] * len(data)
    top = len(_SPARK) - 1
    return "".join(_SPARK[min(top, int((v - low) / span * top + 0.5))] for v in data)
