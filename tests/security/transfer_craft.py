"""Hostile sessions and ``.rw`` files for the transfer security tests, built with pygit2 as an attacker would."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pygit2
import zstandard

from rewind_vcs.store.repo import Repo
from rewind_vcs.store.session import Session
from rewind_vcs.transfer.packfile import parse_pack, reencode_pack
from rewind_vcs.transfer.rwexport import build_pack
from rewind_vcs.transfer.rwformat import assemble
from tests import factories

ESC_TAG = "refs/tags/\x1b[31mevil"
BIDI_TAG = "refs/tags/good\u202etxt.exe"


def _commit(git: pygit2.Repository, files: dict[str, bytes], message: str, parents: list[pygit2.Oid]) -> pygit2.Oid:
    builder = git.TreeBuilder()
    for name, data in sorted(files.items()):
        builder.insert(name, git.create_blob(data), pygit2.enums.FileMode.BLOB)
    sig = pygit2.Signature("mallory", "m@example.com", 1_700_000_000, 0)
    return git.create_commit(None, sig, sig, message, builder.write(), parents)


def code_commit_session(repo: Repo) -> str:
    """A plain code commit posing as a session root (the trailer is there, ``session.json`` is not)."""
    oid = _commit(repo.git, {"README.md": b"# my project\n", "main.py": b"print('hi')\n"},
                  "Initial commit\n\nRewind-Kind: session\n", [])
    sid = str(oid)[:12]
    repo.git.references.create(f"refs/sessions/{sid}/main", oid)
    return sid


def plain_code_commit(repo: Repo) -> str:
    """A code commit with no rewind trailer at all; returns its oid."""
    return str(_commit(repo.git, {"README.md": b"not a session\n"}, "code\n", []))


def newer_format_session(repo: Repo) -> str:
    """A session whose root ``session.json`` says format 99 (written by a newer rewind)."""
    good = factories.write_session(repo, 1, name="from-the-future")
    git = repo.git
    root = git[Session(repo, good).root]
    record = orjson.loads(root.tree["session.json"].data)
    record["format"] = 99
    builder = git.TreeBuilder(root.tree)
    builder.insert("session.json", git.create_blob(orjson.dumps(record)), pygit2.enums.FileMode.BLOB)
    oid = git.create_commit(None, root.author, root.committer, root.message, builder.write(), [])
    sid = str(oid)[:12]
    git.references.create(f"refs/sessions/{sid}/main", oid)
    for ref in list(git.references.iterator()):  # keep only the crafted copy
        if ref.name.startswith(f"refs/sessions/{good}/"):
            ref.delete()
    return sid


def rw_file(repo: Repo, refs: dict[str, str], good_sessions: list[str], *, format_version: int = 1) -> bytes:
    """A ``.rw`` file with valid checksums around exactly ``refs`` (what a crafted export looks like).

    The manifest lists every session with a well-formed ref; step counts are
    real for ``good_sessions`` and 0 for the others (their checks fail first).
    """
    with tempfile.TemporaryDirectory() as tmp:
        git_pack = build_pack(repo, refs, Path(tmp)).read_bytes()
    stored = reencode_pack(parse_pack(git_pack), 0)
    by_session: dict[str, list[str]] = {}
    for name in refs:
        parts = name.split("/")
        if name.startswith("refs/sessions/") and len(parts) == 4 and len(parts[2]) == 12:
            by_session.setdefault(parts[2], []).append(parts[3])
    sessions = []
    for sid, timelines in sorted(by_session.items()):
        steps = len(Session(repo, sid).timeline("main").steps) if sid in good_sessions else 0
        sessions.append({"id": sid, "name": None, "timelines": sorted(timelines), "steps": steps})
    manifest = {
        "format": format_version, "rewind_version": "0.0-crafted", "created_at": 1.0, "object_format": "sha1",
        "refs": refs, "sessions": sessions,
        "counts": {"sessions": len(sessions), "timelines": sum(len(s["timelines"]) for s in sessions),
                   "steps": sum(s["steps"] for s in sessions), "refs": len(refs),
                   "objects": len(stored.entries)},
    }
    payload = zstandard.ZstdCompressor(write_content_size=True, write_checksum=True).compress(stored.data)
    return assemble(orjson.dumps(manifest), payload, len(stored.data))


def session_refs(repo: Repo, sid: str) -> dict[str, str]:
    prefix = f"refs/sessions/{sid}/"
    return {r.name: str(r.target) for r in repo.git.references.iterator() if r.name.startswith(prefix)}


def zstd_of_zeros(size: int, prefix: bytes = b"") -> bytes:
    """One zstd frame of ``prefix`` then zeros, ``size`` bytes in all, made without holding them in memory."""
    cobj = zstandard.ZstdCompressor(level=3, write_content_size=True).compressobj(size=size)
    out = [cobj.compress(prefix)]
    chunk = bytes(1 << 20)
    left = size - len(prefix)
    while left > 0:
        out.append(cobj.compress(chunk[:min(left, len(chunk))]))
        left -= len(chunk)
    out.append(cobj.flush())
    return b"".join(out)


def zstd_frame_claiming(content_size: int) -> bytes:
    """A tiny zstd frame whose header claims ``content_size`` bytes (one RLE block of 1,000)."""
    magic = (0xFD2FB528).to_bytes(4, "little")
    descriptor = bytes([0xC0, 0x00])  # 8-byte content size, a window descriptor, no checksum
    block = (1 | (1 << 1) | (1000 << 3)).to_bytes(3, "little") + b"\0"  # last block, RLE, 1,000 bytes
    return magic + descriptor + content_size.to_bytes(8, "little") + block
