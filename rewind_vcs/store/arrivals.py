"""The order sessions arrived in this repository, and where each came from.

A session's ``started_at`` is written by whoever recorded it: a crafted
``.rw`` file can say it started in the year 2100 and so become ``latest``.
What this repository knows for itself is the order in which sessions
*arrived* here and how: recorded here (``local``), imported from a ``.rw``
file (``imported``), or fetched from a remote (``fetched``, which covers
pull and clone). That is kept in ``.rewind/arrivals``, one line per arrival,
appended with one ``write`` (``O_APPEND``):

    <session id> <origin> <source>

The line number is the arrival sequence. The first line for a session id
wins (a later fetch of new timelines does not make it newer). A session with
no line (pushed into the repository with plain git, or recorded before this
file existed) is ``unknown``: it sorts below every known arrival and is not
trusted as local. This file is not derived data: unlike ``cache/`` it must
not be deleted, and it is never pushed or exported (it describes this copy).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

ARRIVALS_FILE = "arrivals"

log = logging.getLogger(__name__)


class Origin(StrEnum):
    """How a session reached this repository."""

    LOCAL = "local"
    IMPORTED = "imported"
    FETCHED = "fetched"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Arrival:
    seq: int
    """0-based position in ``arrivals``; -1 when the session has no line."""
    origin: Origin
    source: str = ""
    """Where it came from: the ``.rw`` path or the remote's name; empty for local."""

    @property
    def trusted(self) -> bool:
        """True only for sessions recorded in this repository."""
        return self.origin is Origin.LOCAL


UNKNOWN = Arrival(-1, Origin.UNKNOWN)
_ORIGINS = {o.value: o for o in Origin}


def _clean_source(source: str) -> str:
    # One token on one line: whitespace and control characters become "_".
    return "".join(c if c.isprintable() and not c.isspace() else "_" for c in source)[:200]


def note_arrivals(
    repo_path: str | os.PathLike[str],
    session_ids: Iterable[str],
    origin: Origin,
    source: str = "",
) -> None:
    """Append one line per session id not already known (one ``write`` for all)."""
    known = read_arrivals(repo_path)
    src = _clean_source(source) or "-"
    lines = []
    seen: set[str] = set()
    for sid in session_ids:
        if sid in known or sid in seen:
            continue
        if not sid.isalnum():
            log.warning("not noting the arrival of %r: not a session id", sid[:40])
            continue
        seen.add(sid)
        lines.append(f"{sid} {origin.value} {src}\n")
    if not lines:
        return
    fd = os.open(Path(repo_path) / ARRIVALS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, "".join(lines).encode())
    finally:
        os.close(fd)


def read_arrivals(repo_path: str | os.PathLike[str]) -> dict[str, Arrival]:
    """``{session id: Arrival}``; lines that do not parse are skipped."""
    try:
        data = (Path(repo_path) / ARRIVALS_FILE).read_bytes()
    except FileNotFoundError:
        return {}
    out: dict[str, Arrival] = {}
    garbled = 0
    for line in data.decode("utf-8", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) != 3:
            garbled += bool(line.strip())
            continue
        if parts[0] in out:
            continue
        origin = _ORIGINS.get(parts[1])
        if origin is None or origin is Origin.UNKNOWN:
            garbled += 1
            continue
        out[parts[0]] = Arrival(len(out), origin, "" if parts[2] == "-" else parts[2])
    if garbled:
        log.warning("%s: skipped %d line(s) that do not parse (those sessions sort as unknown arrivals)",
                    Path(repo_path) / ARRIVALS_FILE, garbled)
    return out


def arrival_of(repo_path: str | os.PathLike[str], session_id: str) -> Arrival:
    """The arrival of one session, or ``UNKNOWN``."""
    return read_arrivals(repo_path).get(session_id, UNKNOWN)


__all__ = ["ARRIVALS_FILE", "UNKNOWN", "Arrival", "Origin", "arrival_of", "note_arrivals", "read_arrivals"]
