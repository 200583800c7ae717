"""The repository: a bare git repository at ``.rewind/``, opened with pygit2.

``Repo`` is the entry point of the library. It finds, creates and opens
repositories and hands out the read side (:meth:`Repo.sessions`,
:meth:`Repo.session`, :meth:`Repo.resolve`) and the write side
(:meth:`Repo.create_session`). pygit2 is imported on first use only, so that
code paths which never touch objects (``rewind --help``, a cached ``rewind
log``) stay fast.
"""

from __future__ import annotations

import configparser
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewind_vcs.errors import NotARepositoryError, RewindError
from rewind_vcs.store.records import FORMAT_VERSION

if TYPE_CHECKING:
    import pygit2

    from rewind_vcs.store.resolve import Target
    from rewind_vcs.store.session import Session, SessionSummary, Step, Timeline
    from rewind_vcs.store.writer import SessionWriter

DIRNAME = ".rewind"
SIGNATURE_NAME = "rewind"
SIGNATURE_EMAIL = "rewind@localhost"


class Repo:
    """A rewind repository (``.rewind/``, a bare git repository)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        """The ``.rewind`` directory (git's ``--git-dir``)."""

    # -- finding, creating, opening ------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Repo:
        """Create ``PATH/.rewind`` (or open it if it exists: running init twice is harmless)."""
        import pygit2

        top = Path(path).absolute()
        rdir = top / DIRNAME
        if rdir.exists():
            if _is_rewind_dir(rdir):
                return cls(rdir)
            if rdir.is_dir() and any(rdir.iterdir()):
                raise NotARepositoryError(
                    f"{rdir} exists but is not a rewind repository",
                    hint="move it away or choose another directory",
                )
        top.mkdir(parents=True, exist_ok=True)
        git = pygit2.init_repository(str(rdir), bare=True)
        config = git.config
        config["rewind.format"] = FORMAT_VERSION
        config["core.logallrefupdates"] = False
        (rdir / "description").write_text("rewind repository of agent recordings\n")
        for sub in ("hooks", "journal", "locks", "cache"):
            (rdir / sub).mkdir(exist_ok=True)
        ignore_everything(rdir)
        return cls(rdir)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Repo:
        """Open a repository given its ``.rewind`` directory, or the directory holding it."""
        p = Path(path).absolute()
        if p.name != DIRNAME and (p / DIRNAME).exists():
            p = p / DIRNAME
        if not p.exists():
            raise NotARepositoryError(f"no rewind repository at {p}", hint="run 'rewind init' first")
        if not _is_rewind_dir(p):
            raise NotARepositoryError(
                f"{p} is not a rewind repository",
                hint="point REWIND_DIR at a .rewind directory, or run 'rewind init'",
            )
        return cls(p)

    @classmethod
    def find(cls, start: str | os.PathLike[str] = ".") -> Repo:
        """Walk up from ``start`` to the first directory holding ``.rewind/``, as git finds ``.git``."""
        here = Path(start).absolute()
        for d in (here, *here.parents):
            cand = d / DIRNAME
            if cand.exists():
                return cls.open(cand)
        raise NotARepositoryError(
            f"not in a rewind repository (no {DIRNAME}/ here or in any parent of {here})",
            hint="run 'rewind init' or 'rewind demo' here",
        )

    # -- low level -------------------------------------------------------------

    @cached_property
    def git(self) -> pygit2.Repository:
        """The pygit2 repository (opened on first use)."""
        import pygit2

        try:
            return pygit2.Repository(str(self.path), pygit2.enums.RepositoryOpenFlag.BARE)
        except pygit2.GitError as exc:
            raise NotARepositoryError(f"{self.path} is not a readable git repository ({exc})") from None

    @property
    def workdir(self) -> Path:
        """The directory holding ``.rewind/`` (where sessions' relative paths start)."""
        return self.path.parent

    def signature(self, when: float | None = None) -> pygit2.Signature:
        import pygit2

        return pygit2.Signature(SIGNATURE_NAME, SIGNATURE_EMAIL, int(when if when is not None else time.time()), 0)

    def config_get(self, key: str, default: str | None = None) -> str | None:
        """Read ``.rewind/config`` (git config format) without pygit2."""
        return _read_config(self.path).get(key, default)

    def config_get_all(self, key: str) -> list[str]:
        raw = self.config_get(key)
        if not raw:
            return []
        return [v.strip() for v in raw.replace("\n", ",").split(",") if v.strip()]

    def dir(self, name: str) -> Path:
        """A rewind-owned subdirectory of ``.rewind/`` (created on demand)."""
        d = self.path / name
        d.mkdir(exist_ok=True)
        return d

    @contextmanager
    def lease(self, session_id: str, *, blocking: bool = False) -> Iterator[bool]:
        """Hold the per-session writer lease (an ``flock``); yields whether it was acquired.

        The holder of a lease is the only process writing that session, so it may
        remove a stale ``<ref>.lock`` left by a killed writer.
        """
        path = self.dir("locks") / f"{session_id}.lease"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                got = True
            except BlockingIOError:
                got = False
            yield got
        finally:
            os.close(fd)

    def is_leased(self, session_id: str) -> bool:
        """Whether a live process holds the writer lease of this session."""
        path = self.path / "locks" / f"{session_id}.lease"
        if not path.exists():
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False
        finally:
            os.close(fd)

    # -- the read side ------------------------------------------------------------

    def sessions(self, *, use_cache: bool = True) -> list[SessionSummary]:
        """One summary per session, newest first."""
        from rewind_vcs.store.index import list_sessions

        return list_sessions(self, use_cache=use_cache)

    def session_ids(self) -> list[str]:
        from rewind_vcs.store.refs import SESSIONS, parse_timeline_ref, read_refs

        ids = {parse_timeline_ref(n)[0] for n in read_refs(self.path, (SESSIONS,)) if parse_timeline_ref(n)}
        return sorted(ids)

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

    # -- the write side -----------------------------------------------------------

    def create_session(self, **session_fields: Any) -> SessionWriter:
        """Start a new session (its root commit) and return its writer."""
        from rewind_vcs.store.records import SessionInfo
        from rewind_vcs.store.writer import SessionWriter

        return SessionWriter.create(self, SessionInfo(**session_fields))

    def __repr__(self) -> str:
        return f"Repo({str(self.path)!r})"


class _CaseConfigParser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:  # keep git's case rules simple: lower-case keys
        return optionstr.lower()


def _read_config(rdir: Path) -> dict[str, str]:
    """Flatten git's config into ``{"section.key": value}`` (subsections as ``section.sub.key``)."""
    parser = _CaseConfigParser(strict=False, interpolation=None)
    try:
        parser.read(rdir / "config")
    except configparser.Error as exc:
        raise RewindError(f"{rdir / 'config'} is not a valid config file ({exc})") from None
    out: dict[str, str] = {}
    for section in parser.sections():
        name = section.strip()
        if " " in name:  # [remote "origin"] -> remote.origin
            head, _, sub = name.partition(" ")
            name = f"{head.lower()}.{sub.strip().strip(chr(34))}"
        else:
            name = name.lower()
        for key, value in parser.items(section):
            out[f"{name}.{key}"] = value.strip().strip('"')
    return out


def ignore_everything(rdir: Path) -> None:
    """``.rewind/.gitignore`` holding ``*``: ``git add -A`` in the enclosing work tree takes nothing.

    Recordings travel by ``rewind push`` and ``.rw`` files, never as files of
    the project's own repository (git treats a bare repository inside a work
    tree as ordinary files).
    """
    path = rdir / ".gitignore"
    if not path.exists():
        path.write_text("# rewind: recordings travel by 'rewind push' and .rw files, never in the project's git\n*\n")


def _is_rewind_dir(p: Path) -> bool:
    if not p.is_dir() or not (p / "HEAD").exists() or not (p / "objects").is_dir():
        return False
    try:
        return "rewind.format" in _read_config(p)
    except RewindError:
        return False
