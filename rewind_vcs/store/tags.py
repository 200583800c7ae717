"""Tags: ``refs/tags/<name>``, a name for a session tip or a step, as git's lightweight tags.

Listing is linear in tags: the refs are read once, each tag's commit once,
and a timeline's history at most once (:class:`~rewind_vcs.store.resolve.CommitLocator`).
A tag whose name is not one ``rewind tag`` would accept (a pulled or
imported one, or one written with plain git) is skipped with one warning;
``rewind fsck`` names it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rewind_vcs.errors import RefError
from rewind_vcs.store.refs import TAGS, printable, read_refs, valid_tag_name
from rewind_vcs.store.resolve import CommitLocator, Resolver

if TYPE_CHECKING:
    from rewind_vcs.store.gitdir import GitDir as Repo

log = logging.getLogger(__name__)

TAG_NAME_HINT = "use letters, digits, '.', '_' and '-' (at most 63), not 'step-N', 'HEAD' or 'latest'"


@dataclass(frozen=True, slots=True)
class TagInfo:
    """One tag and what it points at."""

    name: str
    commit: str
    session_id: str | None = None
    """None when the commit is not a rewind session or step (a foreign tag)."""
    timeline: str | None = None
    step: int | None = None

    @property
    def target(self) -> str:
        """``id/timeline``, ``id/timeline@step-N``, or the short commit of a foreign tag."""
        if self.session_id is None:
            return self.commit[:12]
        where = f"{self.session_id}/{self.timeline or '?'}"
        return f"{where}@step-{self.step}" if self.step is not None else where

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "commit": self.commit}


def list_tags(repo: Repo) -> list[TagInfo]:
    """Every tag with a valid name, sorted by name."""
    import pygit2

    git = repo.git
    locator = CommitLocator(repo)
    out: list[TagInfo] = []
    bad: list[str] = []
    for ref, oid in sorted(read_refs(repo.path, (TAGS,)).items()):
        name = ref[len(TAGS):]
        if not valid_tag_name(name):
            bad.append(name)
            continue
        try:
            obj = git.get(oid)
            commit = obj.peel(pygit2.Commit) if obj is not None else None
        except (pygit2.GitError, ValueError, TypeError) as exc:
            log.warning("tag %s points at %s, which is not a commit (%s)", name, oid[:12], exc)
            commit = None
        if commit is None:
            out.append(TagInfo(name, oid))
            continue
        cid = str(commit.id)
        located = locator.locate(cid)
        if located is None:
            out.append(TagInfo(name, cid))
        else:
            out.append(TagInfo(name, cid, *located))
    if bad:
        log.warning("skipped %d tag(s) with names rewind does not accept, e.g. %s; run 'rewind fsck'",
                    len(bad), printable(bad[0]))
    return out


def invalid_tag_names(repo: Repo) -> list[str]:
    """Tags ``rewind tag`` would refuse (printable): what fsck reports."""
    names = [r[len(TAGS):] for r in read_refs(repo.path, (TAGS,), warn=False)]
    return [printable(n) for n in names if not valid_tag_name(n)]


def create_tag(repo: Repo, name: str, ref: str = "HEAD", *, force: bool = False) -> TagInfo:
    """Point tag ``name`` at what ``ref`` resolves to (a session's tip or a step)."""
    import pygit2

    if not valid_tag_name(name):
        raise RefError(f"'{printable(name, 70)}' is not a valid tag name", hint=TAG_NAME_HINT)
    target = Resolver(repo).resolve(ref)
    git = repo.git
    if git.references.get(TAGS + name) is not None and not force:
        raise RefError(f"tag '{name}' already exists", hint="use -f to move it, or -d to delete it")
    git.references.create(TAGS + name, pygit2.Oid(hex=target.commit), force=force)
    return TagInfo(name, target.commit, target.session_id, target.timeline, target.step)


def delete_tag(repo: Repo, name: str) -> None:
    """Remove tag ``name``; RefError when there is none."""
    ref = repo.git.references.get(TAGS + name) if valid_tag_name(name) else None
    if ref is None:
        raise RefError(f"tag '{printable(name, 70)}' not found", hint="see 'rewind tag'")
    ref.delete()


__all__ = ["TAG_NAME_HINT", "TagInfo", "create_tag", "delete_tag", "invalid_tag_names", "list_tags"]
