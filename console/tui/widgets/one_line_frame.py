"""What every data line of a `OneLineTable` frame shares, looked up once per frame, and a line
assembled from its cells in one pass.

DataTable draws each line through `_render_line`: it reads the widget's size, scroll offset, cursor and
hover (each a walk up the widget tree or a reactive lookup), renders every column of the row, the
fixed ones twice (the scrolled copy is cropped away at once), then crops, pads and simplifies the
line: about half of a frame of new rows at 10,000 endpoints. Here those lookups happen once per frame,
the fixed columns once per line, and a line that starts unscrolled (the overview's) is its cells side
by side with the row's extension cut to the width, as DataTable's crop and pad leave it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual._segment_tools import line_crop
from textual.strip import Strip


@dataclass(frozen=True, slots=True)
class LineFrame:
    """The inputs a frame's data lines share."""

    width: int
    scroll_x: int
    scroll_y: int
    header: int  # lines above the first row (the header), 0 when hidden
    base_style: Style
    widths: tuple[int, ...]  # every column's render width, in order
    fixed: int  # fixed columns
    cursor_row: int
    hover_row: int
    cell_context: tuple[object, ...]  # what every cell's rendering depends on besides its own inputs
    line_context: tuple[object, ...]  # and every line's

    @property
    def fixed_width(self) -> int:
        return sum(self.widths[: self.fixed])


def join(line: list[Segment], cell: list[Segment]) -> None:
    """Append a cell's (simplified) segments, merging across the boundary as `Segment.simplify` would."""
    if line and cell:
        last, first = line[-1], cell[0]
        if last.style == first.style and not first.control:
            line[-1] = Segment(last.text + first.text, last.style)
            line.extend(cell[1:])
            return
    line.extend(cell)


def assemble(frame: LineFrame, fixed: list[Segment], scrollable: list[Segment], extension: Segment) -> Strip:
    """The line DataTable's `_render_line` makes of a row's fixed cells, its scrollable cells (without the
    copies of the fixed ones) and the extension to the widget's width."""
    width, fixed_width = frame.width, frame.fixed_width
    scrollable_width = sum(frame.widths[frame.fixed :])
    fill = width - fixed_width - scrollable_width
    if frame.scroll_x == 0 and fill > 0:
        # Unscrolled, with room to spare: DataTable's crop takes nothing and its pad cuts the extension.
        line = list(fixed)
        for segment in (scrollable, [Segment(" " * fill, extension.style)]):
            join(line, segment)
        return Strip(line, width)
    scroll_x = frame.scroll_x
    cropped = line_crop([*scrollable, extension], scroll_x, scroll_x + width, width)
    return Strip([*fixed, *cropped]).adjust_cell_length(width, frame.base_style).simplify()
