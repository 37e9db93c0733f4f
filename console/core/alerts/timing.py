"""How long the alert book waits before it calls an alert flapping, settled, or clear after adoption."""

from __future__ import annotations

FLAP_WINDOW = 600.0
FLAP_FIRES = 3
"""Fires of one fingerprint inside FLAP_WINDOW that make it flapping: one page, then quiet."""
FLAP_SETTLE = 120.0
"""Seconds a flapping alert's condition must stay clear before it resolves (and pages the resolve)."""
ADOPTED_CLEAR_PROBES = 3
"""An alert adopted from the store (restart, takeover) resolves only after its condition has been seen
clear for max(rule `for`, this many probe intervals) without this engine seeing it active first."""
