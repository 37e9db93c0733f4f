"""How much of a request the scoring server accepts (no mlflow import: the CLI parses these)."""

from __future__ import annotations

import re

DEFAULT_MAX_BODY = 10 * 1024 * 1024
"""Request bytes parsed at most. MLflow parses a JSON batch at about 1 MB/s (10 MB took 10 s and
0.6 GB of memory on a shared 2-core machine; 33 MB took 15-24 s and up to 1.4 GB)."""
MAX_BODY_CEILING = 1024 * 1024 * 1024

_SIZE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str, ceiling: int = MAX_BODY_CEILING) -> int:
    """Bytes from `1048576`, `512k`, `10M`, `10MB` or `1GiB` (binary units), from 1 to `ceiling`."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (bytes, or a number with k, M or G)")
    size = int(match[1]) * _UNITS[match[2].lower()]
    if not 1 <= size <= ceiling:
        raise ValueError(f"{text!r} must be between 1 byte and {ceiling // 1024**3}G")
    return size
