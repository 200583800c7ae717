"""Commit-message trailers: the running totals every rewind commit carries.

A step or closing commit's message ends in ``Rewind-*: value`` lines (see
docs/FORMAT.md). Listing reads a session's row from its tip's trailers alone,
so this module is the read side's as much as the writer's: it sits at the
bottom of the store, below both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import overload

from rewind_vcs.errors import FormatError

KIND = "Rewind-Kind"
SESSION = "Rewind-Session"
STEP = "Rewind-Step"
TOKENS = "Rewind-Tokens"
COST = "Rewind-Cost"
ERRORS = "Rewind-Errors"
EXIT = "Rewind-Exit"

def message_with_trailers(subject: str, trailers: Mapping[str, object]) -> str:
    """``subject``, a blank line, then one ``Key: value`` line per trailer."""
    body = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    return f"{subject}\n\n{body}\n"


def parse_trailers(message: str) -> dict[str, str]:
    """The ``Rewind-*`` trailers of a commit message (other lines are ignored)."""
    out: dict[str, str] = {}
    for line in message.splitlines()[1:]:
        key, sep, value = line.partition(": ")
        if sep and key.startswith("Rewind-"):
            out[key] = value
    return out


@overload
def trailer_number(trailers: Mapping[str, str], key: str) -> int: ...
@overload
def trailer_number(trailers: Mapping[str, str], key: str, kind: type[int], default: float = 0) -> int: ...
@overload
def trailer_number(trailers: Mapping[str, str], key: str, kind: type[float], default: float = 0) -> float: ...
def trailer_number(
    trailers: Mapping[str, str], key: str, kind: type[int] | type[float] = int, default: float = 0
) -> int | float:
    """A numeric trailer; a malformed one means a damaged commit (FormatError), not a crash."""
    raw = trailers.get(key)
    if raw is None:
        return kind(default)
    try:
        return kind(raw)
    except ValueError:
        raise FormatError(f"commit trailer {key}: {raw[:40]!r} is not a number", hint="run 'rewind fsck'") from None


__all__ = [
    "COST", "ERRORS", "EXIT", "KIND", "SESSION", "STEP", "TOKENS",
    "message_with_trailers", "parse_trailers", "trailer_number",
]
