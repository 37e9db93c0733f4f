"""The C library's heap in a watcher process.

Each Prometheus round of a large fleet allocates blocks of a megabyte or more for a moment (the
answers' bodies and their text, one value per endpoint of every signal) and frees them once read.
glibc serves such a block from its own mapping and unmaps it when freed, until the first of them is
freed: from then on it raises the size it maps (up to 32 MB) and serves them from the heap instead,
where a freed block is a hole between objects that stay, which the process keeps. At 10,000
Prometheus-read endpoints that was about 16 MB of the watcher's resident set, given back to the
system by `malloc_trim` and taken again by the next round. Fixing the size at glibc's starting value
keeps those blocks mapped, so they go back to the system when freed.
"""

from __future__ import annotations

import ctypes
import os

M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter for the smallest block served from its own mapping."""
MMAP_THRESHOLD = 128 * 1024
"""glibc's starting value; set, it no longer moves."""


def map_large_blocks() -> bool:
    """Serve blocks of `MMAP_THRESHOLD` bytes or more from their own mappings for the rest of the
    process; False where the C library has no such setting (not glibc) or the environment already
    chose one (`MALLOC_MMAP_THRESHOLD_`)."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return mallopt is not None and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
