"""Time-series charts for the endpoint detail (textual-plotext; imported only with that screen)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from textual_plotext import PlotextPlot

Series = dict[str, tuple[Sequence[float], Sequence[float | None]]]
"""label -> (x, y): x is how long ago, negative (-60 is 60 units ago), y may have gaps (None)."""

TICKS = 5


class SeriesChart(PlotextPlot):
    """Line charts of named series over time, every axis labelled with its unit.

    `y_label` names the left axis; series passed as `right` use a second axis on the right
    (`right_label`), so a share in % can sit beside a rate in req/s.
    """

    def __init__(self, title: str, y_label: str, right_label: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart_title = title
        self.y_label = y_label
        self.right_label = right_label
        self._last: object = None

    def show(
        self,
        series: Series,
        *,
        x_label: str,
        note: str = "",
        right: Series | None = None,
        since: float | None = None,
    ) -> None:
        """Plot `series` on the left axis and `right` on the right one, from `since` (default: the
        earliest point) to 0; the right axis (a share in %) runs from 0 to at most 100."""
        right = right or {}
        key = (
            tuple((k, tuple(x), tuple(y)) for k, (x, y) in series.items()),
            tuple((k, tuple(x), tuple(y)) for k, (x, y) in right.items()),
            x_label,
            note,
            since,
        )
        if key == self._last:
            return
        self._last = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.chart_title + (f" ({note})" if note else ""))
        earliest = 0.0 if since is None else since
        drawn: set[str] = set()
        peak = 0.0
        for side, group in (("left", series), ("right", right)):
            for label, (x, y) in group.items():
                points = [(xi, yi) for xi, yi in zip(x, y, strict=False) if yi is not None]
                if points:
                    xs = [p[0] for p in points]
                    plt.plot(xs, [p[1] for p in points], label=label, marker="braille", yside=side)
                    earliest = min(earliest, *xs)
                    drawn.add(side)
                    if side == "right":
                        peak = max(peak, *(p[1] for p in points))
        if not drawn:
            plt.title(self.chart_title + " (no data yet)")
            self.refresh()
            return
        if "left" in drawn:
            # plotext's own signatures say `xside` where `yside` is meant; its docs and code agree on `yside`.
            plt.ylabel(self.y_label, yside="left")  # type: ignore[call-arg]
        if "right" in drawn:
            plt.ylabel(self.right_label, yside="right")  # type: ignore[call-arg]
            plt.ylim(0, min(max(peak * 1.2, 1.0), 100.0), yside="right")  # type: ignore[arg-type]
        plt.xlabel(x_label)
        if earliest < 0:
            plt.xlim(earliest, 0)
            # Ticks read as positive ages ("60 45 30 15 0" seconds ago), not "-60 ... 0".
            ticks = age_ticks(-earliest)
            plt.xticks(ticks, [_age(t) for t in ticks])
        self.refresh()


def age_ticks(span: float, most: int = TICKS) -> list[float]:
    """At most `most` round positions from `-span` to 0 (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    raw = span / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [-k * step for k in range(int(span / step + 1e-9), -1, -1)]


def _age(x: float) -> str:
    age = abs(x)
    return f"{age:.0f}" if age >= 100 or age == int(age) else f"{age:.2g}"
