"""Rich styles for data cells, taken from the Textual theme's variables."""

from __future__ import annotations

from textual.color import Color


def palette(variables: dict[str, str]) -> dict[str, str]:
    """Styles by meaning (`up`, `degraded`, `down`, `unknown`, `accent`, `muted`): the theme's colours,
    alpha blended over its background so cells look the same on every terminal."""
    background = Color.parse(variables.get("background", "black"))

    def solid(name: str, fallback: str) -> str:
        try:
            color = Color.parse(variables.get(name, fallback))
        except Exception:
            return fallback
        if color.a < 1:
            color = background.blend(color.with_alpha(1.0), color.a)
        return color.hex6

    return {
        "up": solid("success", "green"),
        "degraded": solid("warning", "yellow"),
        "loading": solid("warning", "yellow"),
        "down": solid("error", "red"),
        "unknown": solid("foreground-muted", "grey50"),
        "accent": solid("accent", "yellow"),
        "muted": solid("foreground-muted", "grey50"),
    }
