"""One resolver for every ref a user types.

Grammar (tried in this order, as dulwich's ``objectspec`` does for git)::

    spec      := base [ "@step-" N ] | "step-" N
    base      := "HEAD" | "latest" | tag | session [ "/" timeline ]
    session   := "latest" | name | id-prefix

- ``step-N`` means ``HEAD@step-N``; N is 1-based.
- A name that is both a tag (``refs/tags/<name>``) and a session's name or id
  prefix is ambiguous: an error listing both (a pulled or imported tag never
  shadows a local session). ``refs/tags/<name>`` names the tag alone,
  ``<session>/main`` the session alone.
- A session name wins over an id prefix; among sessions with one name the
  newest arrival wins (``.rewind/arrivals``, see :mod:`~rewind_vcs.store.index`).
- An id prefix must be unique: an ambiguous one is an error listing the
  candidates.
- A ref longer than :data:`MAX_REF_LENGTH` characters is refused.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rewind_vcs.errors import AmbiguousRefError, FormatError, RefError
from rewind_vcs.store import trailers as trailer_keys
from rewind_vcs.store.index import SkippedSession, list_sessions, session_tips
from rewind_vcs.store.refs import ID_LENGTH, MAIN, TAGS, parse_timeline_ref, timeline_ref
from rewind_vcs.store.session import Session, SessionSummary, Timeline
from rewind_vcs.store.trailers import parse_trailers, trailer_number

if TYPE_CHECKING:
    from rewind_vcs.store.gitdir import GitDir as Repo

_STEP_RE = re.compile(r"^step-(\d+)$")
#: Longest ref a user may type (git's own limit on a ref name is about the file system's).
MAX_REF_LENGTH = 1024
_HEX_RE = re.compile(r"^[0-9a-f]{1,40}$")


@dataclass(frozen=True)
class Target:
    """What a spec points at: a timeline (``step is None``) or one step on it."""

    spec: str
    session_id: str
    timeline: str | None  # the timeline the commit is on (main preferred); None if none holds it
    commit: str  # the timeline's tip, or the step's commit
    step: int | None = None

    @property
    def is_step(self) -> bool:
        return self.step is not None

    def describe(self) -> str:
        where = f"{self.session_id}/{self.timeline or '?'}"
        return f"{where}@step-{self.step}" if self.step is not None else where


class Resolver:
    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._summaries: list[SessionSummary] | None = None
        self._skipped: list[SkippedSession] = []

    # -- entry point ---------------------------------------------------------------

    def resolve(self, spec: str) -> Target:
        spec = spec.strip()
        if not spec:
            raise RefError("empty ref", hint="give a session id, name, 'latest' or 'step-N'")
        try:
            spec.encode()
        except UnicodeEncodeError:
            raise RefError(f"ref {spec.encode(errors='backslashreplace').decode()} is not valid UTF-8",
                           hint="ref names are text: see 'rewind log'") from None
        if len(spec) > MAX_REF_LENGTH:
            raise RefError(f"ref is {len(spec):,} characters long",
                           hint=f"refs longer than {MAX_REF_LENGTH} characters are refused; see 'rewind log'")
        if any(c in spec for c in "\n\r\t\0"):
            raise RefError(f"ref {spec!r} holds control characters", hint="see 'rewind log'")
        m = _STEP_RE.match(spec)
        if m:
            base, n = "HEAD", int(m.group(1))
        elif "@" in spec:
            base, _, suffix = spec.rpartition("@")
            m = _STEP_RE.match(suffix)
            if not m or not base:
                raise RefError(f"cannot parse ref '{spec}'", hint="write <session>@step-N, e.g. latest@step-3")
            n = int(m.group(1))
        else:
            base, n = spec, None
        target = self._base(base)
        if n is None:
            return Target(spec, target.session_id, target.timeline, target.commit, target.step)
        if n < 1:
            raise RefError(f"step-{n} is out of range: steps are numbered from 1")
        timeline = Session(self.repo, target.session_id).timeline(target.timeline or MAIN)
        step = timeline.step(n)
        return Target(spec, target.session_id, timeline.name, step.commit_id, n)

    # -- bases --------------------------------------------------------------------------

    def _base(self, base: str) -> Target:
        if base == "HEAD":
            return self._head()
        if base == "latest":
            return self._timeline_target(base, self._latest().id, MAIN)
        git_refs = self.repo.git.references
        if base.startswith(TAGS):
            tag = git_refs.get(base)
            if tag is None:
                raise RefError(f"no tag '{base[len(TAGS):]}'", hint="see 'rewind tag'")
            return self._commit_target(base, str(tag.peel().id))
        tag = git_refs.get(TAGS + base) if "/" not in base else None
        if tag is not None:
            clash = self._sessions_named(base)
            if clash:
                raise AmbiguousRefError(
                    base, [f"tag {base}"] + [f"session {sid}" for sid in clash],
                    hint=f"write refs/tags/{base} for the tag, or {clash[0]}/main for the session",
                )
            return self._commit_target(base, str(tag.peel().id))
        if "/" in base:
            sess, _, tl = base.partition("/")
            sid = self._session_id(sess)
            if git_refs.get(timeline_ref(sid, tl)) is None:
                known = sorted(t.name for t in Session(self.repo, sid).timelines())
                raise RefError(
                    f"session {sid} has no timeline '{tl}'",
                    hint=f"its timelines are: {', '.join(known)}",
                )
            return self._timeline_target(base, sid, tl)
        return self._timeline_target(base, self._session_id(base), MAIN)

    def _head(self) -> Target:
        git = self.repo.git
        if git.head_is_unborn:
            raise RefError("HEAD is not checked out yet", hint="run 'rewind checkout <session>' or name a session")
        if git.head_is_detached:
            return self._commit_target("HEAD", str(git.head.target))
        head = git.references.get("HEAD")
        name = head.target if head is not None else None
        parsed = parse_timeline_ref(name) if isinstance(name, str) else None
        if parsed is None:
            raise RefError(f"HEAD points at {name}, which is not a timeline", hint="run 'rewind checkout <session>'")
        if git.references.get(str(name)) is None:
            raise RefError(f"HEAD points at {parsed[0]}/{parsed[1]}, which no longer exists",
                           hint="run 'rewind checkout <session>'")
        return self._timeline_target("HEAD", *parsed)

    def _timeline_target(self, spec: str, sid: str, timeline: str) -> Target:
        ref = self.repo.git.references.get(timeline_ref(sid, timeline))
        if ref is None:
            raise RefError(f"no timeline {sid}/{timeline}", hint="see 'rewind timelines " + sid + "'")
        return Target(spec, sid, timeline, str(ref.target), None)

    def _commit_target(self, spec: str, commit_id: str) -> Target:
        """A commit named by a tag or a detached HEAD: find its session, timeline and step."""
        located = CommitLocator(self.repo).locate(commit_id)
        if located is None:
            raise RefError(f"'{spec}' points at {commit_id[:12]}, which is not a rewind step or session")
        sid, timeline, step = located
        return Target(spec, sid, timeline, commit_id, step)

    # -- sessions -------------------------------------------------------------------------

    def _all(self) -> list[SessionSummary]:
        if self._summaries is None:
            listing = list_sessions(self.repo)
            self._summaries = listing.sessions
            self._skipped = listing.skipped
        return self._summaries

    def _latest(self) -> SessionSummary:
        sessions = self._all()
        if not sessions:
            raise RefError("there are no sessions yet", hint="record one with 'rewind record -- <command>'")
        return sessions[0]

    def _sessions_named(self, text: str) -> list[str]:
        """Sessions a bare ``text`` names as a session: by name, or as an id prefix."""
        sessions = self._all()
        hits = [s.id for s in sessions if s.name == text]
        if _HEX_RE.match(text):
            hits += [s.id for s in sessions if s.id.startswith(text) and s.id not in hits]
        return hits

    def _session_id(self, text: str) -> str:
        if text == "latest":
            return self._latest().id
        sessions = self._all()
        named = [s for s in sessions if s.name == text]  # newest first already
        if named:
            return named[0].id
        if _HEX_RE.match(text):
            hits = [s for s in sessions if s.id.startswith(text)]
            if len(hits) == 1:
                return hits[0].id
            if len(hits) > 1:
                raise AmbiguousRefError(text, [s.id for s in hits])
        broken = [s for s in self._skipped if s.id.startswith(text)] if _HEX_RE.match(text) else []
        if len(broken) == 1:
            reason = broken[0].reason
            if broken[0].id not in reason:
                reason = f"session {broken[0].id} cannot be read: {reason}"
            raise FormatError(reason, hint="run 'rewind fsck'")
        names = sorted({s.name for s in sessions if s.name} | {s.id for s in sessions})
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see 'rewind log' for session ids and names"
        raise RefError(f"unknown ref '{text}': no session, name or tag matches", hint=hint)


class CommitLocator:
    """Which session, timeline and step a commit is, with what it learns cached.

    One locator answers many commits in time linear in them plus the history
    of the timelines involved (``rewind tag`` lists thousands of tags with
    one): the session refs are read once, and a timeline's commits once.
    """

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._tips: dict[str, dict[str, str]] | None = None
        self._members: dict[tuple[str, str], set[str]] = {}

    def _session_tips(self, sid: str) -> dict[str, str]:
        if self._tips is None:
            self._tips = session_tips(self.repo)
        return self._tips.get(sid, {})

    def _holds(self, sid: str, timeline: str, tip: str, commit_id: str) -> bool:
        key = (sid, timeline)
        members = self._members.get(key)
        if members is None:
            members = set(Timeline(Session(self.repo, sid), timeline, tip).commits)
            self._members[key] = members
        return commit_id in members

    def locate(self, commit_id: str) -> tuple[str, str | None, int | None] | None:
        """``(session id, timeline or None, step n or None)``; None when not a rewind commit."""
        import pygit2

        commit = self.repo.git.get(commit_id)
        if not isinstance(commit, pygit2.Commit):
            return None
        trailers = parse_trailers(commit.message)
        kind = trailers.get(trailer_keys.KIND)
        if kind == "session":
            sid = commit_id[:ID_LENGTH]
        elif kind in ("step", "end"):
            sid = trailers.get(trailer_keys.SESSION, "")
        else:
            return None
        tips = self._session_tips(sid)
        if not tips:
            return None
        names = sorted(tips, key=lambda n: (n != MAIN, n))  # main first
        holder = next((n for n in names if tips[n] == commit_id), None)
        if holder is None:
            holder = next((n for n in names if self._holds(sid, n, tips[n], commit_id)), None)
        step = trailer_number(trailers, trailer_keys.STEP) if kind == "step" else None
        return sid, holder, step
