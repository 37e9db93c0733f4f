"""`AlertWrite`: one alert state change on its way to the store, and through its outbox to the pager."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops_console.core.alerts.messages import alert_messages
from mlops_console.core.store import NewAlert, OutboxMessage, Store

if TYPE_CHECKING:
    from mlops_console.config import Settings


class DirectPageInFlight(Exception):
    """A write reached its commit while its pages were being sent directly: retry it once they are."""


@dataclass
class AlertWrite:
    """One alert state change for the store, and through its outbox for the pager.

    Writes run in order on the writer's thread; one that fails stays queued and is retried. `direct`
    holds pages already delivered straight through apprise while the store refused the write: they are
    recorded as sent when the write lands, so nobody is paged twice for them. A direct page and the
    commit exclude each other (`claim_direct`, `with_direct`): a page is either in the outbox or sent.
    """

    kind: str
    """firing | flapping | resolved"""
    fingerprint: str
    created_at: float
    alert: NewAlert
    run: Callable[[Store, AlertWrite], None]
    direct: dict[str, OutboxMessage] = field(default_factory=dict)
    direct_tried: bool = False
    done: bool = False
    """Set on the writer's thread once committed; the book reads it on the event loop."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sending: bool = False
    _committing: bool = False

    def __call__(self, store: Store) -> None:
        committed = False
        try:
            self.run(store, self)
            committed = True
        finally:
            with self._lock:
                # Done before the commit's claim is let go: a direct page checked in between would
                # otherwise go out beside the outbox rows just committed.
                self.done = self.done or committed
                self._committing = False

    def claim_direct(self) -> bool:
        """Before paging directly: False if the write is committing (its outbox rows will page)."""
        with self._lock:
            if self._committing or self.done:
                return False
            self._sending = True
            return True

    def release_direct(self) -> None:
        with self._lock:
            self._sending = False

    def direct_messages(self, settings: Settings, note: str) -> list[OutboxMessage]:
        """The pages this write would queue, with `note` (why they bypass the store); none sent yet."""
        messages = alert_messages(settings, self.kind, self.alert, note)
        return [m for m in messages if m.channel not in self.direct]

    def with_direct(self, messages: list[OutboxMessage]) -> list[OutboxMessage]:
        """`messages` with every channel already paged directly replaced by the page that was sent.

        Called inside the write's transaction, holding the store's write lock: from here on the
        commit, not a direct page, decides who is paged."""
        with self._lock:
            if self._sending:
                raise DirectPageInFlight(self.kind)
            self._committing = True
        by_channel = {m.channel: m for m in messages}
        by_channel.update(self.direct)
        return list(by_channel.values())
