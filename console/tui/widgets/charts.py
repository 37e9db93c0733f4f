"""Time-series charts for the endpoint detail (textual-plotext; imported only with that screen)."""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot


class SeriesChart(PlotextPlot):
    """A line chart of named series sharing one x axis (minutes relative to now)."""

    def __init__(self, title: str, y_label: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart_title = title
        self.y_label = y_label
        self._last: object = None

    def show(self, x: Sequence[float], series: dict[str, Sequence[float | None]], note: str = "") -> None:
        key = (tuple(x), tuple((k, tuple(v)) for k, v in series.items()), note)
        if key == self._last:
            return
        self._last = key
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.chart_title + (f" ({note})" if note else ""))
        plt.ylabel(self.y_label)
        drawn = False
        for label, values in series.items():
            points = [(xi, yi) for xi, yi in zip(x, values, strict=False) if yi is not None]
            if len(points) >= 1:
                plt.plot([p[0] for p in points], [p[1] for p in points], label=label, marker="braille")
                drawn = True
        if not drawn:
            plt.title(self.chart_title + " (no data yet)")
        self.refresh()
