"""What a push or fetch does to each ref: the rules (:func:`plan`) and the result values.

The same rules both ways (see docs/REMOTES.md): a ref the destination lacks is
created; sessions and notes move forward only (a diverged ref is rejected
unless ``force``; one whose source is *behind* the destination is left alone,
even with ``force``); tags and baselines are names, rejected when they exist
with another target unless ``force``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pygit2

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.refs import BASELINES, NOTES, SESSIONS, TAGS, parse_timeline_ref
from rewind_vcs.transfer.incoming import SHARED_PREFIXES, Skipped

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

#: The refspecs written into ``remote.<name>.fetch`` / ``.push`` (for the git CLI's sake;
#: rewind itself expands them per ref, because libgit2's push does not expand globs).
REFSPECS: tuple[str, ...] = tuple(f"{p}*:{p}*" for p in SHARED_PREFIXES)
ZERO_OID = "0" * 40
REMOTE_AHEAD = "the remote has more; fetch to get it"
LOCAL_AHEAD = "this side has more; push to share it"


class RefStatus(StrEnum):
    NEW = "new"
    FAST_FORWARD = "fast-forward"
    FORCED = "forced"
    UP_TO_DATE = "up-to-date"
    MERGED = "merged"  # notes: both sides' notes, in a merge commit (fetch only)
    BEHIND = "behind"  # the source side is behind the destination: nothing to copy
    REJECTED = "rejected"


_NEW_LABEL = {SESSIONS: "new timeline", TAGS: "new tag", BASELINES: "new baseline", NOTES: "new notes"}


@dataclass(frozen=True)
class RefUpdate:
    """One ref of a push or fetch: what it was on the destination, what it is now, and why."""

    ref: str
    old: str | None
    new: str
    status: RefStatus
    reason: str | None = None

    @property
    def changed(self) -> bool:
        return self.status in (RefStatus.NEW, RefStatus.FAST_FORWARD, RefStatus.FORCED, RefStatus.MERGED)

    def line(self) -> str:
        """One line in the style of ``git push`` / ``git fetch``."""
        if self.status is RefStatus.NEW:
            label = _NEW_LABEL.get(prefix(self.ref) or "", "new ref")
            parsed = parse_timeline_ref(self.ref)
            if parsed and parsed[1] == "main":
                label = "new session"
            return f" * [{label}]".ljust(20) + f" {self.ref}"
        if self.status is RefStatus.FAST_FORWARD:
            return f"   {short(self.old)}..{short(self.new)}".ljust(20) + f" {self.ref}"
        if self.status is RefStatus.FORCED:
            return f" + {short(self.old)}...{short(self.new)}".ljust(20) + f" {self.ref} (forced update)"
        if self.status is RefStatus.MERGED:
            return f"   {short(self.old)}..{short(self.new)}".ljust(20) + f" {self.ref} (merged)"
        if self.status is RefStatus.REJECTED:
            return " ! [rejected]".ljust(20) + f" {self.ref} ({self.reason})"
        if self.status is RefStatus.BEHIND:
            return " = [behind]".ljust(20) + f" {self.ref} ({self.reason})"
        return " = [up to date]".ljust(20) + f" {self.ref}"

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "old": self.old, "new": self.new, "status": self.status.value,
                "reason": self.reason}


@dataclass
class TransferResult:
    """What a push or fetch did, per ref.

    A push or fetch goes on past a rejected ref (as git does): **check**
    :attr:`rejected` (or call :meth:`check`) before calling it a success.
    What a fetch did not take at all (a broken ref name, a session that does
    not read as rewind records) is in :attr:`skipped`, one warning each.
    """

    remote: str  # the remote's name, or the URL when none was configured
    url: str
    updates: list[RefUpdate] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def rejected(self) -> list[RefUpdate]:
        return [u for u in self.updates if u.status is RefStatus.REJECTED]

    @property
    def changed(self) -> list[RefUpdate]:
        return [u for u in self.updates if u.changed]

    @property
    def new_sessions(self) -> list[str]:
        out = []
        for u in self.updates:
            parsed = parse_timeline_ref(u.ref)
            if u.status is RefStatus.NEW and parsed and parsed[1] == "main":
                out.append(parsed[0])
        return out

    def check(self) -> None:
        """Raise :class:`RemoteError` naming the rejected refs, if any."""
        rejected = self.rejected
        if not rejected:
            return
        hint = _rejection_hint(rejected)
        if len(rejected) == 1:
            raise RemoteError(f"! [rejected] {rejected[0].ref} ({rejected[0].reason})", hint=hint)
        raise RemoteError(f"{len(rejected)} refs were rejected by {self.url} "
                          f"(first: {rejected[0].ref}, {rejected[0].reason})", hint=hint)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "url": self.url, "objects": self.objects, "bytes": self.bytes,
                "updates": [u.to_json() for u in self.updates], "skipped": [s.to_json() for s in self.skipped]}


def _rejection_hint(rejected: list[RefUpdate]) -> str:
    reasons = {u.reason for u in rejected}
    if reasons <= {"non-fast-forward", "already exists", "a local tag of that name exists"}:
        return "fetch first or use --force"
    if "being recorded here" in reasons:
        return "wait for the recording to finish, then fetch again"
    return "see the reason the other side gave"


def plan(repo: Repo, ref: str, *, source: str, dest: str | None, force: bool, behind: str) -> RefUpdate:
    """The same rules both ways: copy ``source`` onto ``dest`` (None: absent)."""
    if dest is None:
        return RefUpdate(ref, None, source, RefStatus.NEW)
    if dest == source:
        return RefUpdate(ref, dest, source, RefStatus.UP_TO_DATE)
    if prefix(ref) in (TAGS, BASELINES):
        if force:
            return RefUpdate(ref, dest, source, RefStatus.FORCED)
        return RefUpdate(ref, dest, source, RefStatus.REJECTED, "already exists")
    git = repo.git
    if source in git and dest in git:
        if descends(repo, source, dest):
            return RefUpdate(ref, dest, source, RefStatus.FAST_FORWARD)
        if descends(repo, dest, source):
            return RefUpdate(ref, dest, source, RefStatus.BEHIND, behind)
    elif dest in git:
        # the other side's commit is not here yet: only its history tells (fetch downloads it first)
        return RefUpdate(ref, dest, source, RefStatus.FORCED if force else RefStatus.FAST_FORWARD)
    if force:
        return RefUpdate(ref, dest, source, RefStatus.FORCED)
    return RefUpdate(ref, dest, source, RefStatus.REJECTED, "non-fast-forward")


def descends(repo: Repo, a: str, b: str) -> bool:
    try:
        return bool(repo.git.descendant_of(pygit2.Oid(hex=a), pygit2.Oid(hex=b)))
    except (pygit2.GitError, ValueError):  # not commits (a foreign tag object, say)
        return False


def prefix(ref: str) -> str | None:
    for p in SHARED_PREFIXES:
        if ref.startswith(p):
            return p
    return None


def session_of(ref: str) -> str | None:
    parsed = parse_timeline_ref(ref)
    return parsed[0] if parsed else None


def short(oid: str | None) -> str:
    return (oid or ZERO_OID)[:7]
