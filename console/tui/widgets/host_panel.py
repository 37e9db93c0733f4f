"""Host panel: the console host's CPU and memory, and the processes behind local endpoints."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from mlops_console.tui.host import HostSample, fmt_bytes
from mlops_console.tui.text import safe_text
from mlops_console.tui.widgets.status_bar import rows_needed


def bar(percent: float, width: int = 10) -> str:
    filled = round(max(0.0, min(100.0, percent)) / 100 * width)
    return "█" * filled + "░" * (width - filled)


class HostPanel(Static):
    """Shows the last `HostSample`; at narrow widths only the summary line."""

    DEFAULT_CLASSES = "host-panel"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._shown: Text | None = None
        self._rows = 0

    def show(self, sample: HostSample | None, max_procs: int = 6) -> None:
        if sample is None:
            self.update(Text("host: sampling…", style="dim"))
            return
        out = Text(end="")
        out.append("host ", style="bold")
        out.append(f"cpu {bar(sample.cpu)} {sample.cpu:4.0f}%  ")
        out.append(
            f"mem {bar(sample.mem_percent)} {sample.mem_percent:4.0f}% "
            f"({fmt_bytes(sample.mem_used)}/{fmt_bytes(sample.mem_total)})"
        )
        if sample.load:
            out.append(f"  load {sample.load[0]:.2f} {sample.load[1]:.2f} {sample.load[2]:.2f}")
        procs = sorted(sample.procs, key=lambda p: p.endpoint)
        for proc in procs[:max_procs]:
            out.append("\n")
            out.append_text(safe_text(proc.endpoint, "bold", limit=24))
            out.append(f"  pid {proc.pid} ")
            out.append_text(safe_text(proc.name, limit=16))
            out.append(f"  cpu {proc.cpu:5.1f}%  rss {fmt_bytes(proc.rss)}")
        if len(procs) > max_procs:
            out.append(f"\n… {len(procs) - max_procs} more local endpoint processes", style="dim")
        if not procs:
            out.append("\nno endpoint processes on this host", style="dim")
        if out == self._shown:
            return
        rows = rows_needed(out, self.size.width - 2)
        self.update(out, layout=rows != self._rows)
        self._shown, self._rows = out, rows
