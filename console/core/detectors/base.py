"""What every detector shares: the verdict it returns for one observation, and its serialisable state.

A detector sees one signal of one endpoint, one value per poll, in time order. It answers with a
`Verdict`: anomalous (True), normal (False) or unknown (None: still warming up, or too little data
behind the value to say either). Persistence over several polls and the rule's `for` are not the
detector's business: `evaluator.SignalEvaluator` and the alert book apply them, the same way live and
in replay.

State goes out and comes back as a JSON-able dict (`to_state` / `detectors.restore`), so a restarted
watcher continues with the baselines it had instead of warming up again.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")

STATE_VERSION = 1

KINDS = ("spike", "level_shift", "surge", "drop", "ramp", "burn", "above", "below")
"""What a verdict says happened: a short excursion (spike), a lasting change of level (level_shift),
traffic well above or below its normal (surge, drop), a slow climb away from the long-term normal
(ramp), an error budget burning too fast (burn), a static limit crossed (above, below)."""


@dataclass(frozen=True)
class Verdict:
    """A detector's answer for one observation."""

    anomalous: bool | None
    """True: this value is anomalous. False: normal. None: unknown (warming up, not enough data)."""
    score: float | None = None
    """How far out the value is, in the detector's own unit (robust z, -log10 p, burn rate, ratio)."""
    expected: tuple[float, float] | None = None
    """The band of normal values (low, high) in the signal's unit; an open side is -inf/inf."""
    kind: str | None = None
    """One of KINDS for anomalous verdicts (and for an accepted level shift), else None."""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    """What the verdict was based on (observed value, baseline, spread, counts...), JSON-able."""


UNKNOWN = Verdict(None)


class Detector:
    """Base class: parameters are a frozen dataclass (`Params`), state is plain data."""

    name: ClassVar[str]
    Params: ClassVar[type]

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def update(self, at: float, value: float | None, count: float | None = None) -> Verdict:
        """Judge `value` observed at `at` (epoch seconds). `count` is how many events stand behind it
        (latency samples, requests for an error ratio) where known. A None value is a missed poll."""
        raise NotImplementedError

    def to_state(self) -> dict[str, Any]:
        """Parameters and learnt state as JSON-able data; `detectors.restore` rebuilds the detector."""
        return {
            "detector": self.name,
            "version": STATE_VERSION,
            "params": dict(_params_state(self.params)),
            "state": self._state(),
        }

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> Detector:
        params = params_from(cls.Params, data.get("params") or {})
        detector = cls(params)
        detector._load(data.get("state") or {})
        return detector


def _params_state(params: Any) -> dict[str, Any]:
    """`params` as JSON-able data, never to be changed (callers copy it)."""
    try:
        return _shared_params_state(params)
    except TypeError:  # a field that cannot be hashed (a list read back from a stored state)
        return dataclasses.asdict(params)


@functools.lru_cache(maxsize=1024)
def _shared_params_state(params: Any) -> dict[str, Any]:
    # Parameters are frozen: converted once, not at every write of the learnt state (that conversion
    # was four fifths of taking a fleet's states at the turn of each minute), and shared by every
    # detector with equal ones (a fleet's 60,000 detectors have a handful; one dict each took 3 MB).
    return dataclasses.asdict(params)


def require_at_least(params: Any, low: float, *names: str) -> None:
    """A ValueError naming the first of `names` whose value is below `low` or not finite: a parameter
    out of its range fails `config check`, not the detector at its first poll."""
    for name in names:
        value = getattr(params, name)
        if not (math.isfinite(value) and value >= low):
            raise ValueError(f"{name} must be at least {low}, got {value}")


def require_above(params: Any, low: float, *names: str) -> None:
    """As `require_at_least`, for values that must be more than `low`."""
    for name in names:
        value = getattr(params, name)
        if not (math.isfinite(value) and value > low):
            raise ValueError(f"{name} must be more than {low}, got {value}")


def params_from(params_type: type, values: Mapping[str, Any]) -> Any:
    """A Params dataclass from a mapping, refusing unknown names (a typo never silently does nothing).

    Equal values give one shared (frozen) object: a restored fleet's 60,000 detectors have a handful
    of parameter sets, and one object each, with its converted numbers, took 11 MB."""
    shared = shared_by_json(_params_from, values, params_type)
    try:
        hash(shared)  # only what nobody can change in place is shared (not a list, say)
    except TypeError:
        return _params_from(params_type, values)
    return shared


def shared_by_json(build: Callable[..., T], values: Mapping[str, Any], *args: Hashable) -> T:
    """`build(*args, values)`, one shared result for every `values` with the same exact JSON (1, 1.0
    and true stay apart); values that are not JSON (given by code, not read from a file) are built
    afresh. What is shared must never be changed by its holders."""
    try:
        key = json.dumps(values, sort_keys=True)
    except (TypeError, ValueError):
        return build(*args, values)
    shared: T = _shared(build, args, key)
    return shared


@functools.lru_cache(maxsize=1024)
def _shared(build: Callable[..., Any], args: tuple[Hashable, ...], key: str) -> Any:
    return build(*args, json.loads(key))


def _params_from(params_type: type, values: Mapping[str, Any]) -> Any:
    names = {f.name for f in dataclasses.fields(params_type)}
    unknown = sorted(set(values) - names)
    if unknown:
        known = ", ".join(sorted(names))
        raise ValueError(f"unknown detector parameter(s): {', '.join(unknown)}; known: {known}")
    defaults = {f.name: f.default for f in dataclasses.fields(params_type)}
    converted = {k: _typed(k, v, defaults[k]) for k, v in values.items()}
    return params_type(**converted)


def _typed(name: str, value: Any, default: Any) -> Any:
    """`value` if it has the kind of `default` (a number for a number...), else a ValueError that says so."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and value != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return type(default)(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(default):
            raise ValueError(f"{name} must be a list like {list(default)!r}, got {value!r}")
        return tuple(_typed(name, v, d) for v, d in zip(value, default, strict=True))
    return value
