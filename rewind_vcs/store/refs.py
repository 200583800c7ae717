"""Ref names, and reading refs straight from the files (no pygit2 needed).

Layout (see docs/FORMAT.md):

- ``refs/sessions/<id>/<timeline>``: a timeline of a session; ``main`` is the recording.
- ``refs/tags/<name>``: a name for a session tip or a step.
- ``refs/baselines/<name>``, ``refs/notes/*``: travel with push/pull.

Reading refs as plain files lets ``rewind log`` answer from its cache without
importing pygit2 (150 ms of start-up on its own).
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from pathlib import Path

SESSIONS = "refs/sessions/"
TAGS = "refs/tags/"
BASELINES = "refs/baselines/"
NOTES = "refs/notes/"
MAIN = "main"
#: Length of a session id (hex characters of the root commit's hash).
ID_LENGTH = 12

_TIMELINE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
#: Tag names rewind gives a meaning of its own.
RESERVED_TAGS = frozenset({"HEAD", "latest"})
#: Bidirectional formatting characters (Trojan Source): they reorder what a terminal shows.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

log = logging.getLogger(__name__)


def timeline_ref(session_id: str, timeline: str = MAIN) -> str:
    return f"{SESSIONS}{session_id}/{timeline}"


def parse_timeline_ref(name: str) -> tuple[str, str] | None:
    """``refs/sessions/<id>/<timeline>`` -> ``(id, timeline)``; anything else -> None."""
    if not name.startswith(SESSIONS):
        return None
    rest = name[len(SESSIONS):]
    sid, sep, timeline = rest.partition("/")
    if not sep or not timeline or "/" in timeline:
        return None
    return sid, timeline


def has_unsafe_characters(name: str) -> bool:
    """Control, format (bidirectional overrides, zero-width) or unencodable characters."""
    for c in name:
        if c in _BIDI or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            return True
    return False


_ID_RE = re.compile("[0-9a-f]{" + str(ID_LENGTH) + "}")


def is_session_id(text: str) -> bool:
    """A full session id: the first 12 hex digits of its root commit."""
    return _ID_RE.fullmatch(text) is not None


def valid_timeline_name(name: str) -> bool:
    return (
        isinstance(name, str)
        and _TIMELINE_RE.fullmatch(name) is not None
        and not name.endswith(".lock")
        and ".." not in name
    )


def valid_tag_name(name: str) -> bool:
    """What ``rewind tag`` accepts, and import/pull/fetch keep (anything else is refused or skipped).

    Letters, digits, ``.``, ``_`` and ``-`` (at most 63, starting with a letter
    or digit); never ``HEAD``, ``latest`` or ``step-N`` (the resolver's own
    words), never a control or bidirectional-override character.
    """
    return (
        valid_timeline_name(name)
        and not has_unsafe_characters(name)
        and not name.startswith("step-")
        and name not in RESERVED_TAGS
    )


def read_refs(
    git_dir: str | os.PathLike[str], prefixes: tuple[str, ...] = (SESSIONS, TAGS), *, warn: bool = True
) -> dict[str, str]:
    """All refs under ``prefixes`` as ``{name: hex oid}``: packed-refs first, loose files win.

    Symbolic refs and peeled lines are skipped. This follows git's on-disk
    format (gitrepository-layout(5)); it is a read-only fast path.
    """
    git_dir = Path(git_dir)
    refs: dict[str, str] = {}
    try:
        packed = (git_dir / "packed-refs").read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        packed = ""
    skipped: list[str] = []
    for line in packed.splitlines():
        if not line or line[0] in "#^":
            continue
        oid, _, name = line.partition(" ")
        if name.startswith(prefixes):
            if _unreadable_name(name):
                skipped.append(name)
                continue
            refs[name] = oid
    for prefix in prefixes:
        base = git_dir / prefix
        if not base.is_dir():
            continue
        for root, _dirs, files in os.walk(base):
            for fname in files:
                if fname.endswith(".lock"):
                    continue
                path = Path(root) / fname
                name = path.relative_to(git_dir).as_posix()
                if _unreadable_name(name):
                    skipped.append(name)
                    continue
                try:
                    content = path.read_text().strip()
                except FileNotFoundError:  # deleted while we walked: not there any more
                    continue
                except (OSError, UnicodeDecodeError) as exc:
                    log.warning("cannot read ref %s (%s); run 'rewind fsck'", printable(name), exc)
                    continue
                if content.startswith("ref:"):  # symbolic: not a session or tag of ours
                    continue
                if len(content) < 40:
                    log.warning("ref %s holds %r, not an object id; run 'rewind fsck'", printable(name), content[:40])
                    continue
                refs[name] = content[:40]
    if skipped and warn:
        log.warning("skipped %d ref(s) whose names are not valid UTF-8 text, e.g. %s; run 'rewind fsck'",
                    len(skipped), printable(skipped[0]))
    return refs


def _unreadable_name(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(name: str, limit: int = 120) -> str:
    """A ref name safe to print on one line: escapes for anything that is not plain text."""
    raw = name.encode("utf-8", "surrogateescape")
    text = raw.decode("utf-8", "backslashreplace")
    out = "".join(c if c.isprintable() and c not in _BIDI else f"\\u{ord(c):04x}" for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def refs_with_unreadable_names(git_dir: str | os.PathLike[str], prefixes: tuple[str, ...] = (SESSIONS, TAGS)) -> list[str]:
    """Refs under ``prefixes`` whose names are not UTF-8 (as printable text): what fsck reports."""
    git_dir = Path(git_dir)
    out: list[str] = []
    try:
        packed = (git_dir / "packed-refs").read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        packed = ""
    for line in packed.splitlines():
        name = line.partition(" ")[2]
        if line and line[0] not in "#^" and name.startswith(prefixes) and _unreadable_name(name):
            out.append(printable(name))
    for prefix in prefixes:
        for root, _dirs, files in os.walk(git_dir / prefix):
            for fname in files:
                name = (Path(root) / fname).relative_to(git_dir).as_posix()
                if _unreadable_name(name):
                    out.append(printable(name))
    return out
