"""The reference a window is compared with, reduced to a profile: never the raw rows.

Per numeric feature: reference-quantile bin edges and the share of reference rows in each bin (for
PSI), a quantile sketch of 1001 points (for the Wasserstein distance and the KS statistic, exact to a
thousandth of the mass), mean and standard deviation. Per categorical feature: the counts of its most
frequent categories. A profile is what the store keeps for a version and what a report shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from mlops_console.core.quality.columns import (
    PREDICTION,
    as_floats,
    count_categories,
    fold_categories,
    looks_like_labels,
    numeric_kind,
)

SKETCH_POINTS = 1001
LEVELS = np.linspace(0.0, 1.0, SKETCH_POINTS)
DEFAULT_BINS = 10


def quantile_sketch(ordered: np.ndarray) -> np.ndarray:
    """Quantiles of sorted values (no NaN) at LEVELS, linearly interpolated like `np.quantile`.

    Interpolating in a sorted array is fifty times faster than `np.quantile` with 1001 levels, which
    partitions the data once per level.
    """
    position = LEVELS * (ordered.size - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, ordered.size - 1)
    sketch: np.ndarray = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
    return sketch


def bin_counts(edges: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Rows per bin of sorted values: bin i holds edges[i-1] < v <= edges[i] (ties at an edge go down)."""
    cumulative = np.searchsorted(ordered, edges, side="right")
    return np.diff(np.concatenate(([0], cumulative, [ordered.size])))


@dataclass(frozen=True)
class NumericProfile:
    kind: ClassVar[str] = "numeric"
    count: int
    """Values present (missing and non-finite ones are not)."""
    missing: int
    edges: tuple[float, ...]
    proportions: tuple[float, ...]
    sketch: tuple[float, ...]
    mean: float
    std: float

    @classmethod
    def of(cls, values: np.ndarray, bins: int = DEFAULT_BINS) -> NumericProfile:
        present = np.sort(values[~np.isnan(values)])
        missing = int(values.size - present.size)
        if present.size == 0:
            return cls(0, missing, (), (1.0,), (), math.nan, math.nan)
        edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        counts = bin_counts(edges, present)
        return cls(
            count=int(present.size),
            missing=missing,
            edges=tuple(edges.tolist()),
            proportions=tuple((counts / present.size).tolist()),
            sketch=tuple(quantile_sketch(present).tolist()),
            mean=float(present.mean()),
            std=float(present.std()),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "edges": list(self.edges),
            "proportions": list(self.proportions),
            "sketch": list(self.sketch),
            "mean": None if math.isnan(self.mean) else self.mean,
            "std": None if math.isnan(self.std) else self.std,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericProfile:
        return cls(
            count=int(data["count"]),
            missing=int(data["missing"]),
            edges=tuple(float(x) for x in data["edges"]),
            proportions=tuple(float(x) for x in data["proportions"]),
            sketch=tuple(float(x) for x in data["sketch"]),
            mean=math.nan if data.get("mean") is None else float(data["mean"]),
            std=math.nan if data.get("std") is None else float(data["std"]),
        )


@dataclass(frozen=True)
class CategoricalProfile:
    kind: ClassVar[str] = "categorical"
    count: int
    missing: int
    counts: tuple[tuple[str, int], ...]
    """(category, rows), most frequent first; at most MAX_CATEGORIES, the rest as `(other)`."""

    @classmethod
    def of(cls, values: Iterable[Any]) -> CategoricalProfile:
        counts, missing = count_categories(values)
        folded = fold_categories(counts)
        ranked = tuple(sorted(folded.items(), key=lambda kv: (-kv[1], kv[0])))
        return cls(count=sum(folded.values()), missing=missing, counts=ranked)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "missing": self.missing, "counts": dict(self.counts)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalProfile:
        counts = tuple((str(k), int(v)) for k, v in dict(data["counts"]).items())
        return cls(count=int(data["count"]), missing=int(data["missing"]), counts=counts)


Profile = NumericProfile | CategoricalProfile


def is_prediction(name: str) -> bool:
    return name == PREDICTION or name.startswith(PREDICTION + ".")


def profile_values(
    name: str, values: Sequence[Any] | np.ndarray, *, bins: int, categorical: Iterable[str] = ()
) -> Profile:
    """The profile of one column; its kind follows the values (see `columns`)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "f":
        labels = is_prediction(name) and looks_like_labels(values[~np.isnan(values)].tolist())
        if name in set(categorical) or labels:
            return CategoricalProfile.of(values.tolist())
        return NumericProfile.of(values, bins)
    listed = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if (
        name in set(categorical)
        or not numeric_kind(listed)
        or (is_prediction(name) and looks_like_labels(listed))
    ):
        return CategoricalProfile.of(listed)
    return NumericProfile.of(as_floats(listed), bins)


@dataclass(frozen=True)
class ReferenceProfile:
    features: tuple[tuple[str, Profile], ...]
    """Input features and prediction columns, in the reference's column order."""
    rows: int
    source: str
    """Where it came from, for people: a path, an artifact of a run, the first rows after a deploy."""
    _by_name: dict[str, Profile] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", dict(self.features))

    def get(self, name: str) -> Profile | None:
        return self._by_name.get(name)

    @property
    def input_names(self) -> list[str]:
        return [name for name, _ in self.features if not is_prediction(name)]

    @property
    def prediction_names(self) -> list[str]:
        return [name for name, _ in self.features if is_prediction(name)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "source": self.source,
            "features": {name: profile.to_dict() for name, profile in self.features},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        features: list[tuple[str, Profile]] = []
        for name, item in dict(data["features"]).items():
            profile: Profile = (
                NumericProfile.from_dict(item)
                if item["kind"] == "numeric"
                else CategoricalProfile.from_dict(item)
            )
            features.append((str(name), profile))
        return cls(tuple(features), int(data["rows"]), str(data["source"]))


def profile_columns(
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    source: str,
    bins: int = DEFAULT_BINS,
    categorical: Iterable[str] = (),
) -> ReferenceProfile:
    """A reference profile from columns of equal length (inputs, and prediction columns if known)."""
    wanted = set(categorical)
    rows = max((len(v) for v in columns.values()), default=0)
    features = tuple(
        (name, profile_values(name, values, bins=bins, categorical=wanted))
        for name, values in columns.items()
    )
    return ReferenceProfile(features, rows, source)


def profile_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    source: str,
    bins: int = DEFAULT_BINS,
    categorical: Iterable[str] = (),
) -> ReferenceProfile:
    """A reference profile from rows (a missing key is a missing value)."""
    materialised = list(rows)
    names: dict[str, None] = {}
    for row in materialised:
        names.update(dict.fromkeys(row))
    columns = {name: [row.get(name) for row in materialised] for name in names}
    return profile_columns(columns, source=source, bins=bins, categorical=categorical)
