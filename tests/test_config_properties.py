"""No config file gives a traceback: `config check` answers 0 (valid) or 2 (file, key, problem).

Hypothesis writes three kinds of files: arbitrary bytes, arbitrary text, and TOML documents shaped
like a config (the real sections and keys, with plausible and hostile values: huge and negative
numbers, NaN, wrong types, bad durations, markup, control characters).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

import tests._hypothesis  # noqa: F401  (loads the profile)
from mlops_console.cli import main

SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(
        ["", "0", "5s", "500ms", "1h", "-3s", "1e400s", "30d", "NaN", "inf", "x", "${UNSET_VAR_FOR_TEST}"]
    ),
    st.sampled_from(["http://127.0.0.1:5001", "json://127.0.0.1:9/hook", "sqlite:///x.db", "*", "[red]x[/]"]),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)

SECTIONS: dict[str, list[str]] = {
    "registry": ["tracking_uri", "timeout", "default_alias", "aliases", "refresh"],
    "store": ["lock_timeout"],
    "notify": ["renotify_after", "max_attempts", "timeout"],
    "tui": ["keymap"],
}
ARRAYS: dict[str, list[str]] = {
    "endpoints": [
        "name", "url", "adapter", "model", "alias", "interval", "timeout", "payload", "metrics_url",
        "metrics", "path", "expect_status", "expect_body", "deploy",
    ],
    "notifications": ["url", "min_severity", "endpoints"],
    "rules": ["rule", "endpoint", "threshold", "for", "severity", "enabled"],
}  # fmt: skip


def table(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from([*keys, "unknown_key"]), VALUES, max_size=len(keys))


CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        **{name: table(keys) for name, keys in SECTIONS.items()},
        **{name: st.lists(table(keys), max_size=3) for name, keys in ARRAYS.items()},
        "extra": VALUES,
    },
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are TOML basic-string escapes (lone surrogates aside)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(config: dict[str, Any], store: Path) -> str:
    lines: list[str] = []
    for name, value in config.items():
        if name in SECTIONS:
            lines.append(f"[{name}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()]
            if name == "store":
                lines.append(f"path = {json.dumps(str(store))}")
        elif name in ARRAYS:
            for item in value:
                lines.append(f"[[{name}]]")
                lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in item.items()]
        else:
            lines.insert(0, f"{name} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


def check(content: bytes) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_bytes(content)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["config", "check", str(path)])
        stderr = err.getvalue()
        assert code in (0, 2), (code, stderr)
        assert "Traceback" not in stderr
        if code == 2:
            assert f"{path}: " in stderr, stderr
        return code, stderr.replace(str(path), "PATH")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_give_a_traceback(content: bytes) -> None:
    check(content)


@given(st.text(max_size=200))
def test_arbitrary_text_never_gives_a_traceback(content: str) -> None:
    check(content.encode("utf-8", "surrogatepass"))


@given(CONFIGS)
def test_config_shaped_documents_are_valid_or_exit_2_with_the_key(config: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check(toml_document(config, Path(tmp) / "store" / "c.db").encode("utf-8", "surrogatepass"))


def test_a_file_that_is_not_utf8_is_a_config_error() -> None:
    code, stderr = check(b'[registry]\ntracking_uri = "\xff\xfe"\n')
    assert code == 2 and "PATH: not UTF-8 text (byte 27: invalid start byte)" in stderr, stderr
