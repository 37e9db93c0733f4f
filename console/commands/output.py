"""Printing for the registry commands: aligned tables of escaped cells, local and ISO times, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mlops_console.core.limits import json_safe
from mlops_console.core.text import printable


def iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def local(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def table(headers: list[str], rows: list[list[str]]) -> str:
    # Cells hold registry names, versions, tags, actors and reasons: shown escaped.
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)


def fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def print_json(data: Any) -> None:
    print(json.dumps(json_safe(data), indent=2, default=str))


def json_error(message: str, exit_code: int) -> dict[str, Any]:
    """What a `--json` command prints on stdout when it fails: the same line stderr gets, and the code."""
    return {"ok": False, "error": message, "exit_code": exit_code}
