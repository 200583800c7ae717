"""What every incoming session must pass, whether it comes from a ``.rw`` file or a remote.

Sessions arriving from elsewhere are untrusted input. ``rewind import``,
``fetch``, ``pull`` and ``clone`` run the same checks, here, and skip what
fails with one :class:`Skipped` line each (as git skips a ref with a broken
name), so one bad session never stops the others:

- **ref names** (:func:`ref_problem`): only ``refs/sessions/<12-hex id>/<timeline>``,
  ``refs/tags/<name>``, ``refs/baselines/*`` and ``refs/notes/*`` travel; a
  tag name must be one ``rewind tag`` accepts (not ``HEAD``, ``latest``,
  ``step-N``, no control or bidirectional characters: :func:`valid_tag_name`);
- **sessions** (:func:`check_session`): every timeline starts at the session's
  root commit (``Rewind-Kind: session``, its id the root's first 12 hex
  digits), and every record and trailer reads as every command will read it
  (:func:`rewind_vcs.store.check.read_session_fully`); records of a newer
  format are refused with upgrade advice;
- **no mixing histories** (:func:`local_root`): a session id that exists here
  with another root commit is refused.

Names shown to the user come from the other side: :func:`visible` escapes
control and format characters and shortens them, so a ref name cannot drive
the terminal.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewind_vcs.errors import FormatTooNewError, RewindError
from rewind_vcs.store.refs import (
    BASELINES,
    MAIN,
    NOTES,
    SESSIONS,
    TAGS,
    parse_timeline_ref,
    valid_tag_name,
    valid_timeline_name,
)

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

log = logging.getLogger(__name__)

#: The ref namespaces that travel (push, fetch, ``.rw``); everything else in ``.rewind/`` stays home.
SHARED_PREFIXES: tuple[str, ...] = (SESSIONS, TAGS, BASELINES, NOTES)
ID_LENGTH = 12
_SESSION_ID = re.compile(r"[0-9a-f]{12}")
HINT_NEWER = "upgrade rewind: pip install -U rewind-vcs"


@dataclass(frozen=True)
class Skipped:
    """Something incoming that was not taken, and why (one warning line)."""

    what: str  # "session <id>" or "ref <name>" (already made visible)
    reason: str

    def line(self) -> str:
        return f"skipped {self.what}: {self.reason}"

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "reason": self.reason}


class SessionRejected(Exception):
    """Internal: why an incoming session is refused (the message is its reason)."""


def visible(text: str, limit: int = 80) -> str:
    """``text`` safe to print: control, format (bidi) and separator characters escaped, at most ``limit`` chars."""
    out = []
    for c in text[: limit + 1]:
        if unicodedata.category(c)[0] in "CZ" and c != " ":
            out.append(c.encode("unicode_escape").decode("ascii"))
        else:
            out.append(c)
    shown = "".join(out)
    return shown[:limit] + "..." if len(text) > limit or len(shown) > limit else shown


def skipped_ref(name: str, reason: str) -> Skipped:
    skip = Skipped(f"ref {visible(name)}", reason)
    log.warning("%s", skip.line())
    return skip


def skipped_session(sid: str, reason: str) -> Skipped:
    skip = Skipped(f"session {visible(sid, 20)}", reason)
    log.warning("%s", skip.line())
    return skip


def valid_git_name(name: str) -> bool:
    """Whether git would accept ``name`` as a ref name (never raises, whatever the bytes were)."""
    import pygit2

    try:
        return bool(pygit2.reference_is_valid_name(name))
    except (UnicodeError, ValueError, TypeError):
        return False


def ref_problem(name: object) -> str | None:
    """Why ``name`` may not arrive here (from a ``.rw`` file or a remote), or None when it may."""
    if not isinstance(name, str) or not name.startswith(SHARED_PREFIXES):
        return "is outside refs/sessions, refs/tags, refs/baselines and refs/notes"
    if not valid_git_name(name):
        return "is not a valid ref name"
    if not name.isprintable():
        return "holds control, format or bidirectional-override characters"
    if name.startswith(SESSIONS):
        parsed = parse_timeline_ref(name)
        if parsed is None or not _SESSION_ID.fullmatch(parsed[0]) or not valid_timeline_name(parsed[1]):
            return "is not refs/sessions/<12-hex id>/<timeline>"
    if name.startswith(TAGS) and not valid_tag_name(name[len(TAGS):]):
        return "is a tag name 'rewind tag' refuses (HEAD, latest, step-N, or characters outside A-Z a-z 0-9 . _ -)"
    return None


def _commit(git: Any, oid: str) -> Any:
    import pygit2

    try:
        obj = git[oid]
    except (KeyError, ValueError, pygit2.GitError):
        raise SessionRejected(f"object {oid[:12]} is missing") from None
    if not isinstance(obj, pygit2.Commit):
        raise SessionRejected(f"{oid[:12]} is not a commit")
    return obj


def root_of(git: Any, tip: str, limit: int = 1_000_000) -> str:
    """The root commit reached from ``tip`` by first parents (raises SessionRejected if broken)."""
    commit = _commit(git, tip)
    for _ in range(limit):
        if not commit.parent_ids:
            return str(commit.id)
        commit = _commit(git, str(commit.parent_ids[0]))
    raise SessionRejected("its history is too long to be a session")


def local_root(repo: Repo, sid: str, tips: dict[str, str]) -> str | None:
    """The root commit of session ``sid`` as this repository has it (None: no such session here)."""
    tip = tips.get(MAIN) or next(iter(tips.values()), None)
    if tip is None:
        return None
    try:
        return root_of(repo.git, tip)
    except SessionRejected:
        return None


def check_session(repo: Repo, sid: str, tips: dict[str, str]) -> int:
    """Read session ``sid`` at ``tips`` (``{timeline: oid}``, objects in ``repo``) as every command will.

    Returns the number of steps on ``main`` (0 without one); raises
    :class:`SessionRejected` with the reason otherwise.
    """
    import pygit2

    from rewind_vcs.store.check import read_session_fully
    from rewind_vcs.store.session import Session
    from rewind_vcs.store.trailers import parse_trailers

    git = repo.git
    if not _SESSION_ID.fullmatch(sid):
        raise SessionRejected("its id is not 12 hex digits")
    if not tips:
        raise SessionRejected("it has no timelines")
    for timeline, tip in sorted(tips.items()):
        root = _commit(git, root_of(git, tip))
        if str(root.id)[:ID_LENGTH] != sid or parse_trailers(root.message).get("Rewind-Kind") != "session":
            raise SessionRejected(f"timeline {visible(timeline, 64)} does not start at the session's root commit")
    session = Session(repo, sid)
    session.__dict__["_tips"] = dict(tips)  # read these tips, wherever their refs are
    try:
        return read_session_fully(session).get(MAIN, 0)
    except FormatTooNewError as exc:
        raise SessionRejected(f"it holds records written by a newer rewind ({exc.message}); {HINT_NEWER}") from None
    except KeyError as exc:
        raise SessionRejected(f"it does not read as rewind records (it has no {visible(str(exc), 80)})") from None
    except (RewindError, ValueError, TypeError, AttributeError, IndexError, pygit2.GitError) as exc:
        raise SessionRejected(f"it does not read as rewind records ({visible(str(exc), 160)})") from None


def peeled_commit(git: Any, oid: str) -> str | None:
    """The commit a tag or baseline points at (through tag objects), or None."""
    import pygit2

    try:
        return str(git[oid].peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        return None


__all__ = [
    "HINT_NEWER",
    "SHARED_PREFIXES",
    "SessionRejected",
    "Skipped",
    "check_session",
    "local_root",
    "peeled_commit",
    "ref_problem",
    "root_of",
    "skipped_ref",
    "skipped_session",
    "valid_git_name",
    "visible",
]


def oldest_first(repo: Repo, session_ids: list[str]) -> list[str]:
    """Sessions arriving together keep their own recorded order among themselves.

    The batch as a whole is newer than everything already here (arrival
    order); within it, the authors' ``started_at`` is harmless to use.
    """

    def started(sid: str) -> float:
        try:
            return float(repo.session(sid).info.started_at)
        except Exception:  # noqa: BLE001 - an unreadable session sorts first, not fatally
            return 0.0

    return sorted(session_ids, key=started)
