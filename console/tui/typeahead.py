"""Keys typed ahead of a bar: whatever follows `:` or `/` in one terminal read goes into that bar.

Textual forwards a key to the focused widget the moment it arrives, but runs the key's binding only
once the key has bubbled back up to the app. The keys of one read (a paste, `tmux send-keys`, a fast
typist on a loaded machine) that follow `:` are therefore all forwarded to the table behind it
before `:` opens the command bar, and their bindings then act on that screen: the `s` of `:models`
silenced the selected alert. So the app holds back every key that arrives after a key bound to open a
bar until that key has run its binding, and then routes the held keys as usual: into the bar, which
now has focus, or wherever they would have gone had the bar not opened.
"""

from __future__ import annotations

from textual import events
from textual.app import App
from textual.dom import DOMNode
from textual.timer import Timer

BAR_ACTIONS = frozenset({"command_bar", "filter"})
"""Actions that open a text bar (`:` command bar, `/` filter)."""

CHECK_SECONDS = 0.5


class TypeAhead:
    """Holds input events while a bar-opening key travels from the focused widget back to the app."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.opener: events.Key | None = None
        self.held: list[events.Event] = []
        self._origin: DOMNode | None = None
        self._returned = False
        self._timer: Timer | None = None

    def hold(self, event: events.Event) -> bool:
        """Called with every event the app receives; True if it is held back for now."""
        if not isinstance(event, (events.Key, events.Paste)):
            return False
        if event.is_forwarded:  # on its way back up from a widget
            self._returned = event is self.opener
            return False
        if self.opener is not None:
            self.held.append(event)
            return True
        if isinstance(event, events.Key) and self._opens_bar(event):
            self.opener = event
            self._origin = self.app.focused or self.app.screen
            self._timer = self.app.set_interval(CHECK_SECONDS, self.check)
        return False

    def release_after(self, event: events.Event) -> list[events.Event]:
        """Called after the app handled `event`: the held events, once the opener has run its binding."""
        if event is not self.opener or not self._returned:
            return []
        return self._release()

    async def check(self) -> None:
        """Let go if the opener can no longer come back (its widget left the screen meanwhile).

        Runs as a timer callback on the app's message loop, so nothing else is handled before the held
        events have been routed, in order.
        """
        origin = self._origin
        if self.opener is not None and (origin is None or not origin.is_attached or not origin.is_running):
            for held in self._release():
                await self.app.on_event(held)

    def _release(self) -> list[events.Event]:
        held, self.held, self.opener, self._origin, self._returned = self.held, [], None, None, False
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        return held

    def _opens_bar(self, event: events.Key) -> bool:
        focused = self.app.focused
        if focused is not None and focused.check_consume_key(event.key, event.character):
            return False  # typed into the focused input (`active_bindings` misses some, e.g. `/`)
        active = self.app.active_bindings.get(event.key)
        return active is not None and active.enabled and active.binding.action in BAR_ACTIONS
