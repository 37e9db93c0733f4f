"""A one-line DataTable cell rendered straight to segments, as DataTable would render it.

DataTable renders each cell through Rich's layout machinery (`Styled(Padding(cell))` and
`Console.render_lines`): about a millisecond per cell under load, so a frame of new rows (a filter
keystroke, a scroll) cost hundreds of milliseconds. A cell that fits on its line needs none of it: its
text's own segments, padded to the width, with the cell's styles around them. The segments are the
same ones DataTable produces (`tests/test_tui_overview_fleet.py` compares them on every visible cell);
anything else (a cell wider than its column, several lines, tabs, justified text) returns None so that
DataTable renders it.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

_LINE = Text("\n")


def render_one_line(
    console: Console, text: Text, width: int, padding: int, pre: Style, post: Style
) -> list[list[Segment]] | None:
    """`text` padded by `padding` spaces each side to `width` cells, styled as `Styled(..., pre, post)`;
    None when it does not fit on its line as it is."""
    plain = text.plain
    inner = width - 2 * padding
    if inner < 1 or text.justify or text.overflow or "\n" in plain or "\t" in plain:
        return None
    length = cell_len(plain)
    if length > inner:
        return None

    def styled(style: Style | None) -> Style | None:
        # What `Segment.apply_style(segments, style=pre, post_style=post)` gives each segment.
        if pre:
            style = pre + style
        if post:
            style = style + post if style else post
        return style

    if not text.spans:  # one style or none: one segment (what `Text.render` gives such a text)
        if not text.style:
            content = [Segment(plain, styled(None))]
        else:
            own = console.get_style(text.style, default=Style.null())
            content = [Segment(plain, styled(own))] if plain else []
    else:
        # Rich renders a text as its lines joined by newlines: the text's own style becomes a span then.
        content = [Segment(s.text, styled(s.style)) for s in _LINE.join([text]).render(console)]
    blank = styled(Style.null())
    line = [Segment(" " * padding, blank)] if padding else []
    line.extend(content)
    if length < inner:
        line.append(Segment(" " * (inner - length), blank))
    if padding:
        line.append(Segment(" " * padding, blank))
    return [line]


def looks_key(text: Text) -> tuple[object, ...] | None:
    """What `render_one_line` reads of a text, hashable: two texts with the same key render the same.
    None for a text with click or link metadata of its own (its segments' meta is not only the cell's)."""
    style = text.style
    if isinstance(style, Style) and (style._meta or style._link_id):
        return None
    spans = text.spans
    for span in spans:
        if isinstance(span.style, Style) and (span.style._meta or span.style._link_id):
            return None
    return (text.plain, style, tuple(spans), text.justify, text.overflow, text.end)
