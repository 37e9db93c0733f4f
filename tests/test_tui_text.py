"""safe_text: untrusted strings are displayed literally, never as markup or terminal control."""

from __future__ import annotations

from rich.text import Text

from mlops_console.core.formatting import age as fmt_age
from mlops_console.core.formatting import latency as fmt_latency
from mlops_console.core.formatting import ratio as fmt_ratio
from mlops_console.tui.text import DASH, clean, safe_text, sparkline


def test_markup_is_literal() -> None:
    text = safe_text("[bold red]boom[/]")
    assert isinstance(text, Text)
    assert text.plain == "[bold red]boom[/]"
    assert not text.spans


def test_escape_sequences_and_control_chars_are_removed() -> None:
    raw = "a\x1b[31mred\x1b[0m\x1b]0;pwned\x07b\x00c\x9b2Jd\rx"
    assert clean(raw) == "aredbcd x"


def test_multiline_keeps_newlines_only() -> None:
    assert clean("one\ntwo\x1b[2J\x07", multiline=True) == "one\ntwo"
    assert clean("one\ntwo") == "one two"


def test_limit_truncates_with_ellipsis() -> None:
    assert clean("abcdefgh", limit=5) == "abcd…"


def test_formatting() -> None:
    assert fmt_latency(None) == DASH
    assert fmt_latency(0.0042) == "4.2ms"
    assert fmt_latency(0.611) == "611ms"
    assert fmt_ratio(0.021) == "2.1%"
    assert fmt_age(None, 100) == "never"
    assert fmt_age(40, 100) == "1m"
    assert sparkline([1, 2, 3], 10) == "▁▅█"
    assert sparkline([], 10) == ""
