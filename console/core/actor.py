"""Who is acting: recorded on acknowledgements, silences, promotes and rollbacks."""

from __future__ import annotations

import getpass
import os


def os_user() -> str:
    """The login name, or `uidN` where there is no passwd entry (containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid{os.getuid()}"
