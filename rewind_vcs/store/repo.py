"""The repository: a bare git repository at ``.rewind/``, opened with pygit2.

``Repo`` is the entry point of the library. It finds, creates and opens
repositories (:class:`~rewind_vcs.store.gitdir.GitDir`, its low half) and
hands out the read side (:meth:`Repo.sessions`, :meth:`Repo.session`,
:meth:`Repo.resolve`), tags (:meth:`Repo.tags`, :meth:`Repo.create_tag`,
:meth:`Repo.delete_tag`) and the write side (:meth:`Repo.create_session`).
It sits on top of the store: every other store module takes a ``GitDir`` and
none imports this one, so the store's imports point one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rewind_vcs.store.gitdir import (
    DIRNAME,
    SIGNATURE_EMAIL,
    SIGNATURE_NAME,
    GitDir,
    ignore_everything,
)

if TYPE_CHECKING:
    from rewind_vcs.store.index import SessionListing
    from rewind_vcs.store.resolve import Target
    from rewind_vcs.store.session import Session, SessionSummary, Step, Timeline
    from rewind_vcs.store.tags import TagInfo
    from rewind_vcs.store.writer import SessionWriter


class Repo(GitDir):
    """A rewind repository (``.rewind/``, a bare git repository)."""

    # -- the read side ------------------------------------------------------------

    def sessions(self, *, use_cache: bool = True) -> list[SessionSummary]:
        """One summary per readable session, newest arrival first (unreadable ones are skipped and logged)."""
        return self.session_listing(use_cache=use_cache).sessions

    def session_listing(self, *, use_cache: bool = True) -> SessionListing:
        """The sessions, newest arrival first, and the ones that could not be read (see ``rewind fsck``)."""
        from rewind_vcs.store.index import list_sessions

        return list_sessions(self, use_cache=use_cache)

    def session_ids(self) -> list[str]:
        from rewind_vcs.store.index import session_tips

        return sorted(session_tips(self))

    def session(self, session_id: str) -> Session:
        """A session by its full id."""
        from rewind_vcs.store.session import Session

        return Session(self, session_id)

    def resolve(self, spec: str) -> Target:
        """Resolve what a user typed (``latest``, a prefix, ``name``, ``id/timeline``, ``x@step-N``...)."""
        from rewind_vcs.store.resolve import Resolver

        return Resolver(self).resolve(spec)

    def timeline(self, spec: str) -> Timeline:
        target = self.resolve(spec)
        return self.session(target.session_id).timeline(target.timeline or "main")

    def step(self, spec: str) -> Step:
        from rewind_vcs.store.session import load_step

        target = self.resolve(spec)
        return load_step(self, target.commit)

    def set_head(self, ref_or_commit: str) -> None:
        """Point HEAD at a timeline (``refs/sessions/...``) or at a step commit.

        git's fsck accepts a symbolic HEAD only under ``refs/heads/``, so HEAD is
        always detached: at the timeline's tip commit (its closing commit, which
        the resolver reads as "on that timeline") or at a step (read as
        "detached at step N", where ``rewind replay`` forks).
        """
        import pygit2

        if ref_or_commit.startswith("refs/"):
            ref_or_commit = str(self.git.references[ref_or_commit].peel().id)
        self.git.set_head(pygit2.Oid(hex=ref_or_commit))

    # -- tags ------------------------------------------------------------------------

    def tags(self) -> list[TagInfo]:
        """Every tag (``refs/tags/<name>``) with what it points at, sorted by name."""
        from rewind_vcs.store.tags import list_tags

        return list_tags(self)

    def create_tag(self, name: str, ref: str = "HEAD", force: bool = False) -> TagInfo:
        """Tag what ``ref`` resolves to; RefError for a bad name, or an existing tag without ``force``."""
        from rewind_vcs.store.tags import create_tag

        return create_tag(self, name, ref, force=force)

    def delete_tag(self, name: str) -> None:
        from rewind_vcs.store.tags import delete_tag

        delete_tag(self, name)

    # -- the write side -----------------------------------------------------------

    def create_session(self, **session_fields: Any) -> SessionWriter:
        """Start a new session (its root commit) and return its writer."""
        from rewind_vcs.store.records import SessionInfo
        from rewind_vcs.store.writer import SessionWriter

        return SessionWriter.create(self, SessionInfo(**session_fields))


__all__ = ["DIRNAME", "SIGNATURE_EMAIL", "SIGNATURE_NAME", "Repo", "ignore_everything"]
