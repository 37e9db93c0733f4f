"""Untrusted strings made safe for a terminal or a text log line.

Endpoint error bodies, versions from `/model-info`, registry names, `--by`/`--note` values and the
like end up in CLI tables and log lines. A terminal obeys the escape sequences in them (set the title,
clear the screen, plant hyperlinks) and bidi overrides reorder what is shown; a newline forges a log
line. `printable()` turns every such character into a visible escape, so the text stays readable and
inert. JSON output is exact and does not go through here.
"""

from __future__ import annotations

import re

BIDI = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
"""Regex class body: characters that reorder or hide text (bidi embeddings, overrides, isolates and
marks) or break a line without a newline."""
# C0 controls (newline and tab too: every use is one line), DEL and C1 controls (8-bit CSI...), BIDI.
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{BIDI}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """`value` as one line of inert text: control characters, ESC, DEL and bidi overrides escaped."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)
