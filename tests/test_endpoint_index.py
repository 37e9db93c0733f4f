"""What the overview's filter matches: typing on narrows the previous matches, and whatever the path
(typed on, backspaced, a snapshot arriving between keys), the names are exactly those a filter run
afresh over every endpoint gives, in sorted order."""

from __future__ import annotations

import dataclasses

from mlops_console.core.snapshot import EndpointSnapshot
from mlops_console.tui.widgets.endpoint_columns import COLUMNS
from mlops_console.tui.widgets.endpoint_index import EndpointIndex
from tests import sample

SORT = next(c for c in COLUMNS if c.key == "health").sort
# Markup and escape codes in names: matched as the literal text the table shows.
ODD = ["[b]ep-70[/b]", "ep[red]-71", "\x1b[31mep-72\x1b[0m", "EP-73:smile:"]


def endpoints(**changed: dict[str, object]) -> list[EndpointSnapshot]:
    template = next(e for e in sample.snapshot().endpoints if e.health == "up")
    names = [f"ep-{i:02d}" for i in range(60)] + ODD
    out = []
    for i, name in enumerate(names):
        e = dataclasses.replace(
            template, name=name, model=f"model-{i % 7}", url=f"http://10.0.{i}.1:80{i % 3}", firing=[]
        )
        out.append(dataclasses.replace(e, **changed.get(name, {})))  # type: ignore[arg-type]
    return out


def afresh(snapshot: list[EndpointSnapshot], text: str) -> list[str]:
    index = EndpointIndex()
    index.update(snapshot, SORT, False)
    return index.matching(text)


def test_typing_on_backspacing_and_typing_again_match_as_a_fresh_filter() -> None:
    snapshot = endpoints(**{"ep-15": {"health": "down"}, "ep-41": {"model": "ep-1-shadow"}})
    index = EndpointIndex()
    index.update(snapshot, SORT, False)
    typed = ["e", "ep", "ep-", "ep-1", "ep-1-", "ep-1", "ep-", "ep-4", "ep-41", "ep-4", "", "0", "0.1", "[b]"]
    typed += ["[b]e", "[b", "[red]", "ep[", "\x1b[31m", "ep-72", "smile", ":smile:", "model-3 ", "down"]
    for text in typed:
        assert index.matching(text) == afresh(snapshot, text), text
    assert index.matching("ep-1") == ["ep-15", *(f"ep-1{i}" for i in range(10) if i != 5), "ep-41"]
    assert index.matching("[b]") == ["[b]ep-70[/b]"]
    assert index.matching("ep[red]") == ["ep[red]-71"]
    assert index.matching("\x1b[31m") == []  # escape codes are not part of the text shown
    assert index.matching("ep-72") == ["\x1b[31mep-72\x1b[0m"]


def test_every_endpoint_matching_is_the_sorted_order_itself() -> None:
    snapshot = endpoints()
    index = EndpointIndex()
    index.update(snapshot, SORT, False)
    assert index.matching("e") is index.sorted  # every name holds an `e`: the table keeps its rows
    assert index.matching("ep-0") == [f"ep-0{i}" for i in range(10)]
    every_but_one = index.matching("ep-")  # all but `ep[red]-71`
    assert len(every_but_one) == len(snapshot) - 1 and "ep[red]-71" not in every_but_one
    assert index.matching(":80") is index.sorted
    assert index.matching(":800") == afresh(snapshot, ":800") != index.sorted


def test_a_snapshot_between_two_keys_changes_what_the_next_key_narrows() -> None:
    """The second key extends the first, but the snapshot in between made another endpoint match it
    and one stop matching: narrowing the first key's matches would keep the one and miss the other."""
    first = endpoints()
    index = EndpointIndex()
    index.update(first, SORT, False)
    assert "ep-05" not in index.matching("ep-1")
    # The engine keeps every unchanged endpoint's snapshot as the same object; two are renewed.
    second = list(first)
    for i, e in enumerate(second):
        if e.name == "ep-05":
            second[i] = dataclasses.replace(e, model="ep-1x")
        elif e.name == "ep-13":
            second[i] = dataclasses.replace(e, health="down")
    index.update(second, SORT, False)
    assert index.matching("ep-1x") == afresh(second, "ep-1x") == ["ep-05"]
    assert index.matching("ep-1") == afresh(second, "ep-1")
    assert index.matching("ep-1")[:2] == ["ep-13", "ep-05"]  # down first, then by name
    # An endpoint gone between two keys: not matched by the next one.
    third = [e for e in second if e.name != "ep-05"]
    index.matching("ep-")
    index.update(third, SORT, False)
    assert index.matching("ep-1") == afresh(third, "ep-1") and "ep-05" not in index.matching("ep-0")
