"""JSON text of the store's documents, written several times faster than `json.dumps` writes it where
the two read back the same."""

from __future__ import annotations

import json
from typing import Any

import orjson

_encode = json.JSONEncoder(check_circular=False).encode
_PLAIN = frozenset({str, int, bool, type(None)})


def dumps(value: Any) -> str:
    """`value` as JSON text that `json.loads` reads back equal to it, NaN and infinities included.

    orjson's text where every value is a plain str, int, bool, None or finite float in dicts, lists
    and tuples. orjson writes NaN and infinity as null, and an infinite quality figure (the rmse of a
    diverged regressor) read back as null broke every follower's read, so anything else goes to
    `json.dumps` (without its check for cycles: the store's documents are trees), as does what orjson
    refuses (an int past 64 bits, a lone surrogate, a key that is not a str)."""
    if _plain(value):
        try:
            return orjson.dumps(value).decode()
        except orjson.JSONEncodeError:
            pass
    return _encode(value)


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    elif kind is float:
        return bool(value - value == 0.0)  # False for NaN and both infinities
    else:
        return kind in _PLAIN
    # Inline for the scalars, a call for each container: this runs for every status row written.
    for item in items:
        kind = type(item)
        if kind is float:
            if item - item != 0.0:
                return False
        elif kind not in _PLAIN and not _plain(item):
            return False
    return True
