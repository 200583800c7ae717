"""What every command shares: finding the repository, printing JSON, the console.

Only the CLI reads the environment (``REWIND_DIR``) and prints.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from rewind_vcs.store.repo import Repo

_console: Console | None = None
_err_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False)
    return _console


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def open_repo(create: bool = False) -> Repo:
    """The repository of the current directory (``REWIND_DIR`` overrides the search)."""
    from rewind_vcs.store.repo import Repo

    override = os.environ.get("REWIND_DIR")
    if override:
        return Repo.open(override)
    if create:
        try:
            return Repo.find(".")
        except Exception:  # noqa: BLE001 - any failure to find means: create one here
            return Repo.init(".")
    return Repo.find(".")


def print_json(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """rewind's own messages go to stderr, so a child's stdout stays clean."""
    err_console().print(message, soft_wrap=True)


def when(ts: float) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


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
