"""Packing: turn a finished session's loose objects into one delta-compressed pack.

A long agent's requests repeat the growing conversation, so raw bytes grow as
N^2; git's packfile deltas bring that back to about the unique content. We
pack each timeline when it finishes (only its loose commits and their trees
and blobs, so deltas see the whole session at once) and then remove the loose
copies that the new pack holds. ``gc`` packs everything into one pack, packs
the refs and clears leftovers of killed writers. libgit2 has no prune, so the
removal is ours: an object is unlinked only once a pack on disk holds it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rewind_vcs.store.refs import timeline_ref

if TYPE_CHECKING:
    import pygit2

    from rewind_vcs.store.gitdir import GitDir as Repo

#: Leftover ``objects/tmp_object_git2_*`` files older than this are from dead writers.
STALE_TMP_SECONDS = 3600


@dataclass
class PackResult:
    objects: int
    loose_removed: int
    pack_bytes: int


def _objects_dir(repo: Repo) -> Path:
    return repo.path / "objects"


def _is_loose(objects: Path, oid: str) -> bool:
    return (objects / oid[:2] / oid[2:]).exists()


def _remove_packed_loose(repo: Repo, candidates: set[str]) -> int:
    import pygit2

    objects = _objects_dir(repo)
    packs = pygit2.OdbBackendPack(str(objects))
    removed = 0
    dirs: set[Path] = set()
    for oid in candidates:
        if not packs.exists(pygit2.Oid(hex=oid)):
            continue
        path = objects / oid[:2] / oid[2:]
        try:
            path.unlink()
            removed += 1
            dirs.add(path.parent)
        except FileNotFoundError:
            pass  # another gc removed it first: the pack holds it, which is all that matters
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass  # not empty: other loose objects live there
    repo.git.odb.refresh() if hasattr(repo.git.odb, "refresh") else None
    return removed


def _pack_size(objects: Path) -> int:
    return sum(p.stat().st_size for p in (objects / "pack").glob("*.pack"))


def pack_timeline(repo: Repo, session_id: str, timeline: str) -> PackResult:
    """Pack the loose objects of one timeline (stopping at already packed history)."""
    import pygit2

    git = repo.git
    objects = _objects_dir(repo)
    ref = git.references.get(timeline_ref(session_id, timeline))
    if ref is None:
        return PackResult(0, 0, 0)
    commits: list[pygit2.Commit] = []
    commit = repo.commit(ref.target)
    while _is_loose(objects, str(commit.id)):
        commits.append(commit)
        if not commit.parent_ids:
            break
        commit = repo.commit(commit.parent_ids[0])
    if not commits:
        return PackResult(0, 0, _pack_size(objects))
    added: set[str] = set()

    def walk_tree(tree: pygit2.Tree) -> None:
        tid = str(tree.id)
        if tid in added:
            return
        added.add(tid)
        for entry in tree:
            eid = str(entry.id)
            if entry.type_str == "tree":
                sub = git[entry.id]
                assert isinstance(sub, pygit2.Tree)
                walk_tree(sub)
            elif eid not in added:
                added.add(eid)

    for c in commits:
        added.add(str(c.id))
        walk_tree(c.tree)
    loose = {oid for oid in added if _is_loose(objects, oid)}
    if not loose:
        return PackResult(0, 0, _pack_size(objects))

    def delegate(pb: pygit2.PackBuilder) -> None:
        # add_recur inserts each commit with its trees and blobs *by path name*,
        # which is what libgit2's delta search groups on (request/body with
        # request/body of the previous step), so the growing conversation deltas.
        for c in reversed(commits):
            pb.add_recur(c.id)

    n = git.pack(None, delegate)
    removed = _remove_packed_loose(repo, loose)
    return PackResult(n, removed, _pack_size(objects))


def loose_object_ids(repo: Repo) -> set[str]:
    objects = _objects_dir(repo)
    out: set[str] = set()
    for d in objects.iterdir():
        if len(d.name) == 2 and d.is_dir():
            for f in d.iterdir():
                if len(f.name) == 38:
                    out.add(d.name + f.name)
    return out


def gc(repo: Repo) -> PackResult:
    """Pack every reachable object into one pack, drop old packs and loose copies, pack refs."""
    import pygit2

    git = repo.git
    objects = _objects_dir(repo)
    old_packs = sorted((objects / "pack").glob("pack-*.pack"))
    loose_before = loose_object_ids(repo)
    tips = [r.peel().id for r in git.references.iterator() if r.name.startswith("refs/")]

    def delegate(pb: pygit2.PackBuilder) -> None:
        # add_recur takes one commit with its tree, not its ancestors: walk history.
        walker = git.walk(None, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
        for oid in tips:
            if git[oid].type == pygit2.enums.ObjectType.COMMIT:
                walker.push(oid)
            else:
                pb.add_recur(oid)
        for commit in walker:
            pb.add_recur(commit.id)

    n = git.pack(None, delegate) if tips else 0
    new_packs = set((objects / "pack").glob("pack-*.pack")) - set(old_packs)
    if new_packs:  # the new pack holds everything reachable: old packs are redundant
        for p in old_packs:
            for ext in (".pack", ".idx", ".rev", ".keep"):
                try:
                    p.with_suffix(ext).unlink()
                except FileNotFoundError:
                    pass  # a pack has no .rev or .keep file unless git wrote one
    removed = _remove_packed_loose(repo, loose_before)
    _clear_stale_tmp(objects)
    pack_refs(repo)
    return PackResult(n, removed, _pack_size(objects))


def _clear_stale_tmp(objects: Path) -> None:
    now = time.time()
    for p in objects.glob("**/tmp_object_git2_*"):
        try:
            if now - p.stat().st_mtime > STALE_TMP_SECONDS:
                p.unlink()
        except FileNotFoundError:
            pass  # its writer finished (renamed it) while we looked


def pack_refs(repo: Repo) -> None:
    """Move loose refs into ``packed-refs`` and remove the empty directories left behind."""
    repo.git.compress_references()
    refs_dir = repo.path / "refs"
    for root, dirs, files in os.walk(refs_dir, topdown=False):
        if root == str(refs_dir) or Path(root).parent == refs_dir:
            continue  # keep refs/heads, refs/tags, refs/sessions themselves
        if not dirs and not files:
            try:
                os.rmdir(root)
            except OSError:
                pass  # a writer created a ref in it meanwhile: keep it
