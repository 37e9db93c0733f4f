"""Which endpoints the overview shows, in which order: every endpoint's latest snapshot, sorted, with the
filter's search text kept per endpoint.

A filter keystroke at 10,000 endpoints has to answer within a frame, so the work is split by how often
its inputs change:
- per snapshot (O(endpoints), cheap steps only): the sort values, a re-sort when any of them changed,
  and the search text of the endpoints whose searched fields changed;
- per keystroke: a pass over the sorted names testing each one's search text; when the new text
  contains the previous one (typing on), only the previous matches can match, so only they are tested.

Nothing here reads the rendered cells: sorting and filtering always see every endpoint's current values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.tui.text import clean

SortKey = Callable[[EndpointSnapshot], Any]


def _searched(e: EndpointSnapshot) -> tuple[str | None, ...]:
    """The fields a filter searches, besides the name (an endpoint's key, which never changes)."""
    return (e.model, e.alias, e.health, e.url, e.served_version, e.expected_version)


class EndpointIndex:
    """The latest snapshot of each endpoint, their order under a sort, and the names a filter matches."""

    def __init__(self) -> None:
        self.snapshots: dict[str, EndpointSnapshot] = {}
        self._sort: tuple[SortKey, bool] | None = None
        self._values: dict[str, Any] = {}  # name -> sort value `sorted` was computed from
        self.sorted: list[str] = []  # every endpoint's name, in the sort's order
        self._search: dict[str, tuple[tuple[str | None, ...], str]] = {}  # name -> (fields, lowercase text)
        self._version = 0  # bumped whenever `sorted` or a search text changed
        self._matched: tuple[int, str, list[str]] | None = None  # (version, needle, names) of the last filter

    def update(self, endpoints: Sequence[EndpointSnapshot], sort: SortKey, reverse: bool) -> None:
        """Take a new snapshot of every endpoint (those missing from it are gone)."""
        before = self.snapshots
        self.snapshots = snapshots = {e.name: e for e in endpoints}
        # The engine hands out an endpoint's snapshot as the same object until something in it changes:
        # only the others can have another search text or sort value.
        renewed = [e for e in endpoints if before.get(e.name) is not e]
        search = self._search
        changed = len(search) != len(snapshots)
        for e in renewed:
            fields = _searched(e)
            known = search.get(e.name)
            if known is None or known[0] != fields:
                search[e.name] = (fields, " ".join(clean(v) for v in (e.name, *fields) if v).lower())
                changed = True
        if len(search) != len(snapshots):
            for name in search.keys() - snapshots.keys():
                del search[name]
        if self._sort == (sort, reverse) and len(renewed) < len(endpoints):
            values = dict(self._values)  # every endpoint the last update had, each unchanged one among them
            values.update((e.name, sort(e)) for e in renewed)
            if len(values) != len(snapshots):
                for name in values.keys() - snapshots.keys():
                    del values[name]
        else:
            values = {e.name: sort(e) for e in endpoints}
        if values != self._values or self._sort != (sort, reverse):
            self._values, self._sort = values, (sort, reverse)
            self.sorted = sorted(values, key=lambda name: (values[name], name), reverse=reverse)
            changed = True
        if changed:
            self._version += 1

    def resort(self, sort: SortKey, reverse: bool) -> None:
        """Sort again on the values as they are now (another column or direction)."""
        self._values, self._sort = {}, None
        self.update(list(self.snapshots.values()), sort, reverse)

    def matching(self, text: str) -> list[str]:
        """The names of the endpoints whose name, model, alias, health, URL or versions contain `text`
        (case-insensitive), in sorted order; every endpoint when `text` is empty."""
        if not text:
            return self.sorted
        needle = text.lower()
        last = self._matched if self._matched is not None and self._matched[0] == self._version else None
        if last is not None and last[1] == needle:
            return last[2]
        # Typing on narrows: whatever matches the longer text matched the shorter one it contains.
        names = last[2] if last is not None and last[1] in needle else self.sorted
        search = self._search
        matches = [name for name in names if needle in search[name][1]]
        if len(matches) == len(self.sorted):
            # Every endpoint (a first key found in every URL): the sorted list itself, which the table
            # recognises as the order it shows, instead of handing it 10,000 rows again.
            matches = self.sorted
        self._matched = (self._version, needle, matches)
        return matches
