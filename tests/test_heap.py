"""The watcher's C heap: the large blocks a round frees go back to the system, not into the heap."""

from __future__ import annotations

import platform

import psutil
import pytest

from mlops_console.core.heap import map_large_blocks


def rss() -> int:
    return psutil.Process().memory_info().rss


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_rounds_large_blocks_go_back_to_the_system_once_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    # A block of 1.5 MB freed, as the first round's answer is: glibc would serve the next ones of that
    # size from the heap from then on.
    answer = b"a" * 1_500_000
    del answer
    assert map_large_blocks()
    before = rss()
    answers, kept = [], []
    for _ in range(40):  # a round: answers of 1 MB, and between them what stays (a few kB)
        answers.append(b"a" * 1_000_000)
        kept.append(bytearray(2000))
    assert rss() - before > 35_000_000
    del answers
    assert rss() - before < 5_000_000, "the freed answers are still held by the process"
    assert len(kept) == 40
