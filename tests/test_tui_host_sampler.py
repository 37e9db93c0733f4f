"""The host panel's sampler: the processes behind local endpoints, found by their listening port."""

from __future__ import annotations

import os
import socket

from mlops_console.tui.host import HostSampler


def test_sampler_finds_local_endpoints_and_follows_a_changed_endpoint_list() -> None:
    with socket.socket() as first, socket.socket() as second:
        for listener in (first, second):
            listener.bind(("127.0.0.1", 0))
            listener.listen()
        port1, port2 = first.getsockname()[1], second.getsockname()[1]
        sampler = HostSampler()
        remote = [(f"remote-{i}", f"http://10.1.0.{i}:{port1}") for i in range(50)]
        endpoints = [("local-a", f"http://127.0.0.1:{port1}/invocations"), *remote]
        sample = sampler(endpoints)
        assert [(p.endpoint, p.pid) for p in sample.procs] == [("local-a", os.getpid())]
        # The same list again, then one with another local endpoint: the local ports are kept
        # between samples only while the endpoints stay the same.
        assert [p.endpoint for p in sampler(list(endpoints)).procs] == ["local-a"]
        sampler._ports_at = 0.0  # listeners looked up again, as after the port cache's 30 s
        changed = [*endpoints, ("local-b", f"http://localhost:{port2}")]
        assert [p.endpoint for p in sampler(changed).procs] == ["local-a", "local-b"]
        assert [p.endpoint for p in sampler(remote).procs] == []
