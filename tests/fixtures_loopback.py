"""Loopback fixtures most engine tests share: a fault-injecting endpoint and apprise sinks (two for
escalation: the first line and the second)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._loopback import FaultServer, Sink


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    yield s
    s.stop()


@pytest.fixture
def sinks() -> Iterator[tuple[Sink, Sink]]:
    first, second = Sink().start(), Sink().start()
    yield first, second
    first.stop()
    second.stop()
