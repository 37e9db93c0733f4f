"""sqlite-utils without pandas and numpy.

`sqlite_utils.db` imports pandas and numpy when they are installed (mlflow installs them), only to map
their scalar types to column types. The store never hands it such values, and in a watcher those two
imports were about 85 MB of resident memory and seconds of start-up. A finder on `sys.meta_path`
answers "not installed" to those two imports when, and only when, sqlite-utils' own module asks:
another thread importing pandas at the same moment (mlflow, in the console) is not affected, which a
`sys.modules[...] = None` guard around the import could not promise.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Sequence
from types import FrameType, ModuleType

_HIDDEN = frozenset({"pandas", "numpy"})
_ASKER = "sqlite_utils.db"
_MACHINERY = ("importlib", "_frozen_importlib")
_lock = threading.Lock()


class _HiddenFromSqliteUtils(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in _HIDDEN and _asked_by_sqlite_utils():
            raise ModuleNotFoundError(f"{fullname} is not used by the store", name=fullname)
        return None


def _asked_by_sqlite_utils() -> bool:
    # The importing module's frame is the first one outside the import machinery.
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_MACHINERY):
        frame = frame.f_back
    return frame is not None and frame.f_globals.get("__name__") == _ASKER


def import_sqlite_utils() -> ModuleType:
    """The `sqlite_utils` module; imported the first time without pandas and numpy, unless another
    part of the process had loaded them already (then sqlite-utils uses them, at no extra cost)."""
    with _lock:
        if not any(isinstance(f, _HiddenFromSqliteUtils) for f in sys.meta_path):
            # Stays installed: taking a finder out while another thread walks sys.meta_path could
            # make that thread's import skip a real finder. It only looks at two names.
            sys.meta_path.insert(0, _HiddenFromSqliteUtils())
        import sqlite_utils

        return sqlite_utils
