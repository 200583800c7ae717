"""Ref names, and reading refs straight from the files (no pygit2 needed).

Layout (see docs/FORMAT.md):

- ``refs/sessions/<id>/<timeline>``: a timeline of a session; ``main`` is the recording.
- ``refs/tags/<name>``: a name for a session tip or a step.
- ``refs/baselines/<name>``, ``refs/notes/*``: travel with push/pull.

Reading refs as plain files lets ``rewind log`` answer from its cache without
importing pygit2 (150 ms of start-up on its own).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SESSIONS = "refs/sessions/"
TAGS = "refs/tags/"
BASELINES = "refs/baselines/"
NOTES = "refs/notes/"
MAIN = "main"
#: Length of a session id (hex characters of the root commit's hash).
ID_LENGTH = 12

_TIMELINE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


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


def valid_timeline_name(name: str) -> bool:
    return bool(_TIMELINE_RE.match(name)) and not name.endswith(".lock") and ".." not in name


def valid_tag_name(name: str) -> bool:
    return valid_timeline_name(name) and not name.startswith("step-") and name not in ("HEAD", "latest")


def read_refs(git_dir: str | os.PathLike[str], prefixes: tuple[str, ...] = (SESSIONS, TAGS)) -> dict[str, str]:
    """All refs under ``prefixes`` as ``{name: hex oid}``: packed-refs first, loose files win.

    Symbolic refs and peeled lines are skipped. This follows git's on-disk
    format (gitrepository-layout(5)); it is a read-only fast path.
    """
    git_dir = Path(git_dir)
    refs: dict[str, str] = {}
    try:
        packed = (git_dir / "packed-refs").read_bytes().decode()
    except FileNotFoundError:
        packed = ""
    for line in packed.splitlines():
        if not line or line[0] in "#^":
            continue
        oid, _, name = line.partition(" ")
        if name.startswith(prefixes):
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
                try:
                    content = path.read_text().strip()
                except (FileNotFoundError, UnicodeDecodeError):
                    continue
                if content.startswith("ref:") or len(content) < 40:
                    continue
                refs[path.relative_to(git_dir).as_posix()] = content[:40]
    return refs
