"""Messages workers post to the UI thread. High-rate ones coalesce (`can_replace`)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from mlops_console.core.snapshot import EngineSnapshot
from mlops_console.core.store import Alert
from mlops_console.tui.host import HostSample


@dataclass
class SnapshotReceived(Message):
    """The engine (or the store's lease holder) produced a new picture of every endpoint."""

    snapshot: EngineSnapshot

    def can_replace(self, message: Message) -> bool:
        # Only the newest snapshot matters: an unprocessed older one is dropped (backpressure).
        return isinstance(message, SnapshotReceived)


@dataclass
class AlertCountsReceived(Message):
    """Open alerts by display state, plus the firing alerts per endpoint."""

    counts: dict[str, int]
    open_alerts: list[Alert]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, AlertCountsReceived)


@dataclass
class HostSampled(Message):
    """One psutil sample of the console host and the local endpoint processes."""

    sample: HostSample

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HostSampled)


@dataclass
class StoreChanged(Message):
    """This console changed the store (ack, silence, promote...): screens showing it should reload."""

    what: str


@dataclass
class RegistrySeen(Message):
    """A registry call of this console reached the registry or did not."""

    seen: tuple[int, str]
    """(order, `ok` or `registry unreachable: ...`): see `Backend.registry_state`."""
