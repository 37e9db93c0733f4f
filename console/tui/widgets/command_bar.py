"""The k9s-style `:` command bar: `:alerts`, `:models`, `:pipelines`, `:audit`, `:endpoint NAME`,
`:drift NAME`, `:q`."""

from __future__ import annotations

from textual.binding import Binding
from textual.suggester import SuggestFromList
from textual.widgets import Input

# command -> aliases (first word of the input)
COMMANDS: dict[str, tuple[str, ...]] = {
    "overview": ("o", "home", "endpoints", "ep", "eps"),
    "alerts": ("a", "al", "alert"),
    "models": ("m", "mo", "model"),
    "audit": ("au", "log"),
    "pipelines": ("p", "pl", "pipeline", "jobs"),
    "endpoint": ("e", "endpoint"),
    "drift": ("d", "quality"),
    "report": ("rep", "shift"),
    "maintenance": ("mw", "maint"),
    "help": ("h", "?"),
    "quit": ("q", "q!", "exit"),
}


def resolve(word: str) -> str | None:
    word = word.lower()
    for name, aliases in COMMANDS.items():
        if word == name or word in aliases:
            return name
    return None


class CommandBar(Input):
    """Hidden until `:`; submitting runs the command, `esc` closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="command.close", tooltip="Close the command bar", show=False),
    ]

    def __init__(self, endpoint_names: list[str] | None = None, **kwargs) -> None:
        names = endpoint_names or []
        words = [*COMMANDS, *(f"endpoint {name}" for name in names), *(f"drift {name}" for name in names)]
        super().__init__(
            placeholder=(
                ":alerts  :models  :pipelines  :audit  :endpoint NAME  :drift NAME  :report [12h]  "
                ":maintenance GLOB 2h WHY  :q"
            ),
            suggester=SuggestFromList(words, case_sensitive=False),
            **kwargs,
        )
        self.display = False

    def open(self) -> None:
        self.value = ""
        self.display = True
        # Focus now, not after a refresh: the keys typed after `:` are routed as soon as this returns.
        self.screen.set_focus(self)

    def action_close(self) -> None:
        self.value = ""
        self.display = False
        getattr(self.screen, "focus_main", self.screen.focus_next)()

    async def _on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip().lstrip(":")
        self.action_close()
        if text:
            self.app.run_console_command(text)  # type: ignore[attr-defined]
