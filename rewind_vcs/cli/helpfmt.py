"""``--help`` that lists commands with their whole one-line description, wrapped, never cut.

click cuts each command's description to fit one line ("... its local CA;...");
:class:`WrappingGroup` prints the first paragraph of each command's help in full
and lets the formatter wrap it. ``rewind --help`` (:class:`rewind_vcs.cli.main.RewindGroup`)
also groups the commands as ``git help`` does.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

__all__ = ["WrappingGroup", "short_help"]


def short_help(cmd: Any) -> str:
    """A command's one-liner in full: its ``short_help``, else its help's first paragraph."""
    text = cmd.short_help or (cmd.help or "").strip().split("\n\n")[0]
    return " ".join(text.split())


class WrappingGroup(TyperGroup):
    """A command group whose ``--help`` lists every visible command with its full description."""

    def visible_commands(self, ctx: Any) -> dict[str, Any]:
        commands = {}
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                commands[name] = cmd
        return commands

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(n, short_help(c)) for n, c in self.visible_commands(ctx).items()]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
