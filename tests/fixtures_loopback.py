"""Loopback fixtures most engine tests share: a fault-injecting endpoint and an apprise sink."""

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
