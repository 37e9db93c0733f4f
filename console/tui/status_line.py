"""The status line every screen shows: endpoints by health, alerts by state, registry, engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from mlops_console.tui.text import firing_and_pending, safe_text

if TYPE_CHECKING:
    from mlops_console.core.snapshot import EngineSnapshot
    from mlops_console.tui.app import MlopsConsole

HEALTH_SYMBOL = {"up": "●", "degraded": "◐", "loading": "◌", "down": "✖", "unknown": "?"}
STALE_SECONDS = 15.0
"""Seconds without a snapshot after which the engine is shown as not updating."""


def status_line(app: MlopsConsole) -> Text:
    """The status line: endpoints by health, alerts by state, the registry, the engine."""
    colors = app.theme_colors()
    out = Text(end="")
    out.append(" mlops-console ", style="bold reverse")
    if app.read_only:
        out.append(" READ-ONLY ", style=f"bold reverse {colors['degraded']}")
    out.append("  ")
    snap = app.snapshot
    pending = 0
    if snap is None:
        out.append("endpoints: starting…", style="dim")
    else:
        counts, pending = snapshot_counts(snap)
        for health in ("up", "degraded", "loading", "down", "unknown"):
            if counts[health] or health in ("up", "down"):
                out.append(
                    f"{HEALTH_SYMBOL[health]} {counts[health]} {health}  ",
                    style=colors[health] if counts[health] else "",
                )
    out.append("│ alerts ")
    if app.store_error:
        out.append_text(safe_text(app.store_error, colors["down"]))
    elif app.alert_counts is None:
        out.append("…", style="dim")
    else:
        firing = app.alert_counts.get("firing", 0)
        out.append(f"{firing} firing", style=f"bold {colors['down']}" if firing else "")
        # Conditions that hold but whose `for` has not elapsed: flagged ⚐ in the overview, not stored yet.
        if pending:
            out.append(f" · {pending} pending", style=colors["degraded"])
        out.append(f" · {app.alert_counts.get('acknowledged', 0)} acked")
        out.append(f" · {app.alert_counts.get('silenced', 0)} silenced")
    out.append("  │ registry ")
    registry = registry_label(app.registry_state())
    style = (
        colors["up"]
        if registry == "ok"
        else (colors["down"] if registry.startswith("unreachable") else "dim")
    )
    out.append_text(safe_text(registry, style, limit=60))
    if snap is not None and snap.prometheus != "not configured":
        out.append("  │ prometheus ")
        state = snap.prometheus.split(": ", 1)[-1]  # `URL: problem`: the problem (the URL is configured)
        style = {"ok": colors["up"], "connecting": "dim"}.get(state, colors["down"])
        out.append_text(safe_text(state, style, limit=60))
    engine_error = getattr(app.source, "error", None)
    if engine_error is not None:
        out.append("  │ ")
        out.append_text(safe_text(f"engine stopped: {engine_error}", f"bold {colors['down']}", limit=80))
    elif snap is not None and app.clock() - snap.at > STALE_SECONDS:
        out.append("  │ ")
        out.append(f"engine: no update for {app.clock() - snap.at:.0f}s", style=f"bold {colors['down']}")
    elif snap is not None and not snap.engine.ok:
        out.append("  │ ")
        problem = f"engine {snap.engine.state}: {snap.engine.reason or ''}".rstrip(": ")
        out.append_text(safe_text(problem, f"bold {colors['down']}", limit=80))
    elif snap is not None:
        out.append("  │ engine ")
        following = snap.owner != "this process"
        out.append_text(
            safe_text(
                f"following {snap.owner}" if following else snap.owner,
                colors["accent"] if following else "",
                limit=40,
            )
        )
    return out


_counted: tuple[EngineSnapshot, dict[str, int], int] | None = None


def snapshot_counts(snap: EngineSnapshot) -> tuple[dict[str, int], int]:
    """Endpoints by health, and the alert conditions pending, in one pass over the snapshot.

    Kept for the latest snapshot: the line is rebuilt on every store poll and registry check too, and
    a pass costs tens of milliseconds at 10,000 endpoints.
    """
    global _counted
    if _counted is not None and _counted[0] is snap:
        return _counted[1], _counted[2]
    counts = dict.fromkeys(HEALTH_SYMBOL, 0)
    pending = 0
    for endpoint in snap.endpoints:
        counts[endpoint.health] = counts.get(endpoint.health, 0) + 1
        if endpoint.firing:
            pending += len(firing_and_pending(endpoint.firing)[1])
    _counted = (snap, counts, pending)
    return counts, pending


def registry_label(state: str) -> str:
    """`registry unreachable: x` reads `unreachable: x` after the status bar's own `registry` label."""
    return state.removeprefix("registry ").strip()
