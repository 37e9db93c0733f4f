"""The C library's heap in a watcher process.

Each Prometheus round of a large fleet allocates blocks of a megabyte or more for a moment (the
answers' bodies and their text, one value per endpoint of every signal) and frees them once read.
glibc serves such a block from its own mapping and unmaps it when freed, until the first of them is
freed: from then on it raises the size it maps (up to 32 MB) and the free heap top it keeps (twice
that), and serves those blocks from the heap instead, where a freed block is a hole between objects
that stay, which the process keeps. At 10,000 Prometheus-read endpoints that was about 16 MB of the
watcher's resident set, given back to the system by `malloc_trim` and taken again by the next round.
Fixing both sizes at glibc's starting values, before the watcher reads its configuration, keeps those
blocks mapped, so they go back to the system when freed.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameters: the free heap top kept, the smallest block given its own mapping."""
SIZES = {
    M_TRIM_THRESHOLD: ("MALLOC_TRIM_THRESHOLD_", 128 * 1024),
    M_MMAP_THRESHOLD: ("MALLOC_MMAP_THRESHOLD_", 128 * 1024),
}
"""Each parameter's environment variable and glibc's starting value (set, it no longer moves)."""


def map_large_blocks() -> bool:
    """Serve large blocks from their own mappings, and give a free heap top back, at glibc's starting
    sizes for the rest of the process. False where the C library has no such setting (not glibc);
    a size the environment chose (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`) is left as it is."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return all(bool(mallopt(param, size)) for param, (env, size) in SIZES.items() if env not in os.environ)
