"""Which keys a screen offers, through Textual's public binding API only.

A screen's own actions come from the `BINDINGS` its classes declare (so an action stays listed when a
focused table binds the same key, as `enter` is); the key each one answers to now, after the
`[tui] keymap`, and the app's bindings come from `active_bindings`.
"""

from __future__ import annotations

from dataclasses import replace

from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen


def declared_bindings(node: DOMNode) -> list[Binding]:
    """The bindings `node`'s classes declare, base classes first (the order Textual merges them in)."""
    out: list[Binding] = []
    for cls in reversed(type(node).__mro__):
        declared = cls.__dict__.get("BINDINGS")
        if declared:
            out.extend(Binding.make_bindings(declared))
    return out


def offered_bindings(screen: Screen[object]) -> list[tuple[DOMNode, Binding]]:
    """(node, binding) for the screen's bindings and then the app's, with the keys they answer to now.

    A screen binding that the keymap moved shows its new key; one its `check_action` rules out is
    left to the caller (it may be disabled rather than gone).
    """
    active = screen.active_bindings
    keys = {a.binding.id: key for key, a in active.items() if a.binding.id}
    out: list[tuple[DOMNode, Binding]] = []
    for binding in declared_bindings(screen):
        key = keys.get(binding.id) if binding.id else None
        out.append((screen, replace(binding, key=key) if key else binding))
    out += [(a.node, a.binding) for a in active.values() if a.node is screen.app]
    return out
