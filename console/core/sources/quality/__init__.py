"""Model quality as a source: each endpoint's inference log, tailed and judged off the event loop.

Per endpoint with `[endpoints.inference_log]`, one loop wakes every second and hands a `QualityTracker`
to a worker thread: it reads what the log gained since the last read (whole lines, at most a few MB per
read, following rotation by inode), folds it into a bounded window per model version, and every
`drift.evaluate_every` scores the window of the newest version. The evaluation comes back to the loop
as a frozen `QualitySnapshot`; the engine stores it on the endpoint and evaluates the rules.

The read position is saved in the store with what was learned (references of versions' first rows, the
stuck detector) and the evaluation's aggregates, in one transaction: a restart resumes where the last
evaluation stopped, through any rotation since, and the store never holds an input value.

The modules: `source` (the loops and their worker threads), `tracker` (one endpoint's steps and
evaluations), `reading` (tailing a log from a position), `saved` (the position and what was learned,
to and from the store), `facts` (what the registry and the reference say about a version), `options`
(the window's options from the settings).
"""

from mlops_console.core.sources.quality.source import QualitySource

__all__ = ["QualitySource"]
