"""Listing sessions fast: one row per session from its tip, cached against the refs.

A row is derived from the ``main`` tip commit alone (its trailers carry the
running step, token, cost and error counts; its tree carries
``session.json``), so listing never walks history. The rows are cached in
``.rewind/cache/sessions.json`` keyed by the tip they were read from; the
refs are read as plain files, so a fully cached listing never imports
pygit2. The cache is derived data: deleting it is always safe.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from rewind_vcs.errors import RewindError
from rewind_vcs.store.arrivals import read_arrivals
from rewind_vcs.store.refs import MAIN, SESSIONS, is_session_id, printable, read_refs
from rewind_vcs.store.session import SessionSummary, row_from_tip, summarise, summary_from_row

if TYPE_CHECKING:
    from rewind_vcs.store.gitdir import GitDir as Repo

CACHE_FILE = "cache/sessions.json"
#: Bumped when the shape of a cached row changes (older caches are rebuilt).
CACHE_VERSION = 3

log = logging.getLogger(__name__)


def session_tips(repo: Repo) -> dict[str, dict[str, str]]:
    """``{session id: {timeline: tip oid}}`` read from the ref files."""
    out: dict[str, dict[str, str]] = {}
    start = len(SESSIONS)
    for name, oid in read_refs(repo.path, (SESSIONS,)).items():
        sid, sep, timeline = name[start:].partition("/")  # parse_timeline_ref, inlined: 10,000 calls
        if not sep or not timeline or "/" in timeline:
            continue
        tls = out.get(sid)
        if tls is None:
            out[sid] = {timeline: oid}
        else:
            tls[timeline] = oid
    return out


def _load_cache(repo: Repo) -> dict[str, dict[str, Any]]:
    try:
        data = orjson.loads((repo.path / CACHE_FILE).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        log.info("ignoring the session cache %s (%s): rebuilding it", repo.path / CACHE_FILE, exc)
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_VERSION:
        return {}
    rows = data.get("rows")
    return rows if isinstance(rows, dict) else {}


def _save_cache(repo: Repo, rows: dict[str, dict[str, Any]]) -> None:
    target = repo.path / CACHE_FILE
    try:
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".sessions.")
        with os.fdopen(fd, "wb") as f:
            f.write(orjson.dumps({"format": CACHE_VERSION, "rows": rows}))
        os.replace(tmp, target)
    except OSError as exc:  # a read-only repository still lists; it just is not cached
        log.info("cannot write the session cache %s (listing is not cached): %s", target, exc)


@dataclass(frozen=True, slots=True)
class SkippedSession:
    """A session listing could not read (a foreign commit under ``refs/sessions/``, a newer format...)."""

    id: str
    reason: str


@dataclass(slots=True)
class SessionListing:
    """What :func:`list_sessions` found: readable sessions newest arrival first, and the skipped ones."""

    sessions: list[SessionSummary] = field(default_factory=list)
    skipped: list[SkippedSession] = field(default_factory=list)


_ROW_KEYS = frozenset({"tip", "name", "started_at", "command", "steps", "tokens", "cost_usd", "errors", "kind"})


def _usable(row: object, tip: str) -> bool:
    return isinstance(row, dict) and row.get("tip") == tip and _ROW_KEYS <= row.keys()


def _read_row(repo: Repo, sid: str, tip: str) -> dict[str, Any]:
    """The row of one session, or ``{"tip", "bad": reason}`` when it cannot be read."""
    try:
        return row_from_tip(repo, sid, tip)
    except RewindError as exc:
        reason = exc.message
    except Exception as exc:  # noqa: BLE001 - a damaged object store raises GitError, KeyError and friends
        reason = f"{type(exc).__name__}: {exc}"
    return {"tip": tip, "bad": printable(reason, 300)}


def list_sessions(repo: Repo, *, use_cache: bool = True) -> SessionListing:
    """Every readable session, newest arrival first (see :func:`newest_first`); unreadable ones skipped."""
    import gc

    # Tens of thousands of small dicts and rows, none of them cyclic: the cyclic
    # collector would only re-scan them (about a fifth of the time on 10,000 sessions).
    enabled = gc.isenabled()
    gc.disable()
    try:
        listing = _list_sessions(repo, use_cache)
    finally:
        if enabled:
            gc.enable()
    if listing.skipped:
        shown = ", ".join(printable(s.id, 40) for s in listing.skipped[:5]) + (" ..." if len(listing.skipped) > 5 else "")
        # ``rewind log`` says it in its own words; other commands stay quiet about other sessions.
        log.warning("skipped %d unreadable session(s) (%s); run 'rewind fsck' for details",
                    len(listing.skipped), shown, extra={"reported_by_cli": True})
    return listing


def _list_sessions(repo: Repo, use_cache: bool) -> SessionListing:
    tips = session_tips(repo)
    cache = _load_cache(repo) if use_cache else {}
    rows: dict[str, dict[str, Any]] = {}
    dirty = False
    for sid, tls in tips.items():
        main = tls.get(MAIN) or next(iter(tls.values()))
        if not is_session_id(sid):
            rows[sid] = {"tip": main, "bad": "its name is not a rewind session id (12 hex digits)"}
            continue
        row = cache.get(sid)
        if not _usable(row, main):
            row = _read_row(repo, sid, main)
            dirty = True
        assert row is not None
        rows[sid] = row
    if dirty or len(rows) != len(cache):  # unreadable rows are not cached: a newer rewind may read them
        _save_cache(repo, {sid: row for sid, row in rows.items() if "bad" not in row})
    listing = SessionListing()
    for sid, row in rows.items():
        if "bad" in row:
            listing.skipped.append(SkippedSession(printable(sid, 80), str(row["bad"])))
        else:
            listing.sessions.append(summary_from_row(repo, sid, row, len(tips[sid])))
    listing.sessions = newest_first(repo, listing.sessions)
    listing.skipped.sort(key=lambda s: s.id)
    return listing


def newest_first(repo: Repo, sessions: list[SessionSummary]) -> list[SessionSummary]:
    """Sort by arrival in this repository (``.rewind/arrivals``), newest first.

    ``started_at`` is written by whoever recorded a session (a crafted ``.rw``
    can claim the year 2100), so it only orders the sessions with no arrival
    line, which all sort below every known arrival.
    """
    arrivals = read_arrivals(repo.path)

    def key(s: SessionSummary) -> tuple[int, int, float, str]:
        a = arrivals.get(s.id)
        if a is None:
            return (0, 0, s.started_at, s.id)
        return (1, a.seq, 0.0, s.id)

    return sorted(sessions, key=key, reverse=True)


def newest_first_ids(repo: Repo) -> list[str]:
    return [s.id for s in list_sessions(repo).sessions]


__all__ = [
    "SessionListing", "SkippedSession", "list_sessions", "newest_first", "newest_first_ids",
    "session_tips", "summarise",
]
