"""What every command shares: finding the repository, printing JSON, the consoles.

Only the CLI reads the environment (through :mod:`rewind_vcs.cli.settings`) and
prints. Everything printed here is made safe first (:mod:`rewind_vcs.cli.safe`):
the consoles never parse markup, :func:`info` escapes control characters in its
whole message, :func:`print_rows` in every cell, :func:`print_json` the few
characters JSON leaves raw.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rewind_vcs.cli.safe import UNSAFE, safe_json_bytes, safe_text
from rewind_vcs.cli.settings import current as settings

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from rewind_vcs.store.repo import Repo

_console: Console | None = None
_err_console: Console | None = None


def reset_consoles() -> None:
    """Forget the consoles (each command makes its own: width, colour and terminal are read then)."""
    global _console, _err_console
    _console = _err_console = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False, markup=False, emoji=False)
    return _console


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False, markup=False, emoji=False)
    return _err_console


def open_repo(create: bool = False) -> Repo:
    """The repository of the current directory (``REWIND_DIR`` overrides the search)."""
    from rewind_vcs.errors import NotARepositoryError
    from rewind_vcs.store.repo import Repo

    override = settings().rewind_dir
    if override:
        repo = Repo.open(override)
    else:
        try:
            repo = Repo.find(".")
        except NotARepositoryError:
            if not create:
                raise
            repo = Repo.init(".")
    _recover(repo)
    return repo


def _recover(repo: Repo) -> None:
    """Commit journals left by a recorder that died (kill -9, power loss): nothing recorded is lost."""
    jdir = repo.path / "journal"
    try:
        if not any(jdir.glob("*.jnl")):
            return
    except OSError:
        return
    from rewind_vcs.proxy.recovery import recover_journals

    done = recover_journals(repo)
    for r in done.recovered:
        info(f"rewind: recovered {r.steps} steps of interrupted session {r.session_id}/{r.timeline} "
             "from its journal (marked incomplete)")
    if done.quarantined:
        from rich.markup import escape

        first = done.quarantined[0]
        more = f" (and {len(done.quarantined) - 1} more)" if len(done.quarantined) > 1 else ""
        info(escape(f"rewind: a journal could not be recovered and was moved, not deleted, to {first.path}"
                    f"{more}: {first.reason}"))


def print_json(data: Any) -> None:
    import orjson

    out = orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"
    sys.stdout.buffer.write(safe_json_bytes(out))
    sys.stdout.flush()


def info(message: str | Text = "", *, style: str | None = None) -> None:
    """One line of rewind's own on stderr, so a child's stdout stays clean.

    A ``str`` is printed as plain text (never parsed as markup) with every control
    character made visible, newlines included; ``style`` colours the whole line.
    A ``Text`` (built with :func:`rewind_vcs.cli.safe.styled`) is printed as it is.
    """
    from rich.text import Text

    if isinstance(message, str):
        message = Text(safe_text(message), style=style or "")
    err_console().print(message, soft_wrap=True)


def out(message: str | Text = "", *, style: str | None = None) -> None:
    """As :func:`info`, on stdout (what a command shows as its result)."""
    from rich.text import Text

    if isinstance(message, str):
        message = Text(safe_text(message), style=style or "")
    console().print(message, soft_wrap=True)


def write_lines(lines: list[str]) -> None:
    """Plain lines on stdout, each made safe (one line each: a newline inside is shown as ``\\n``)."""
    sys.stdout.write("".join(safe_text(line) + "\n" for line in lines))
    sys.stdout.flush()


_WHEN: dict[int, str] = {}


def when(ts: float) -> str:
    """Local time to the minute (memoised per minute: listing 10,000 sessions calls this a lot)."""
    if not ts:
        return "-"
    minute = int(ts // 60)
    text = _WHEN.get(minute)
    if text is None:
        text = _WHEN[minute] = datetime.fromtimestamp(minute * 60).strftime("%Y-%m-%d %H:%M")
    return text


def money(cost: float | None) -> str:
    if cost is None:
        return "-"
    if cost == 0:
        return "$0"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


ANSI = {"green": "32", "red": "31", "yellow": "33", "cyan": "36", "magenta": "35", "dim": "2", "bold": "1"}


def print_rows(columns: list[str], rows: list[list[str]], *, right: Collection[str] = frozenset(),
               styles: dict[str, Callable[[str], str | None]] | None = None,
               max_width: dict[str, int] | None = None) -> None:
    """A plain aligned table, fast for 10,000 rows (rich's Table takes seconds there).

    Every cell is made safe (one line, controls visible) before it is measured.
    ``styles`` maps a column to a function of the cell giving an ANSI colour
    name; colours are used only on a terminal.
    """
    color = sys.stdout.isatty() and not settings().no_color
    styles = styles or {}
    if UNSAFE.search(" ".join(" ".join(row) for row in rows)):  # one scan; cell by cell only when needed
        rows = [[safe_text(cell) for cell in row] for row in rows]
    for col, limit in (max_width or {}).items():
        i = columns.index(col)
        for row in rows:
            if len(row[i]) > limit:
                row[i] = row[i][: limit - 1] + "…"
    n = len(columns)
    widths = [len(c) for c in columns]
    for row in rows:
        for i in range(n):
            if len(row[i]) > widths[i]:
                widths[i] = len(row[i])
    aligned = [(str.rjust if col in right else str.ljust) for col in columns]
    painters = [styles.get(col) if color else None for col in columns]
    header = "  ".join(aligned[i](columns[i], widths[i]) for i in range(n)).rstrip()
    lines = [f"\x1b[1m{header}\x1b[0m" if color else header]
    for row in rows:
        parts = [aligned[i](row[i], widths[i]) for i in range(n)]
        for i, paint in enumerate(painters):
            if paint is not None and (style := paint(row[i])) in ANSI:
                parts[i] = f"\x1b[{ANSI[style]}m{parts[i]}\x1b[0m"
        lines.append("  ".join(parts).rstrip())
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
