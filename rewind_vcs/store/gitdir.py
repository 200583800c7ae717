"""The bare git directory under a repository: finding, creating, opening, config, leases.

:class:`GitDir` is the low half of :class:`~rewind_vcs.store.repo.Repo`: what
the read and write sides (``session``, ``index``, ``resolve``, ``writer``,
``pack``) need from a repository, with no knowledge of them. ``Repo`` adds
the porcelain on top (sessions, resolving, tags, creating sessions), so the
store's imports point one way: records/format/refs/trailers/lease at the
bottom, then this module, then the read and write sides, then ``repo``.

pygit2 is imported on first use only, so that code paths which never touch
objects (``rewind --help``, a cached ``rewind log``) stay fast.
"""

from __future__ import annotations

import configparser
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from rewind_vcs.errors import FormatError, FormatTooNewError, NotARepositoryError, RewindError
from rewind_vcs.store import lease as _lease
from rewind_vcs.store.records import FORMAT_VERSION

if TYPE_CHECKING:
    from typing import Self

    import pygit2

DIRNAME = ".rewind"
SIGNATURE_NAME = "rewind"
SIGNATURE_EMAIL = "rewind@localhost"
FORMAT_KEY = "rewind.format"
log = logging.getLogger(__name__)
#: Longest path we try to open (a crafted REWIND_DIR or argument is refused, not stat'ed).
_MAX_PATH = 4096


class GitDir:
    """A rewind repository's ``.rewind`` directory (a bare git repository)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()
        """The ``.rewind`` directory (git's ``--git-dir``)."""

    # -- finding, creating, opening ------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] = ".") -> Self:
        """Create ``PATH/.rewind`` (or open it if it exists: running init twice is harmless)."""
        import pygit2

        top = _checked_path(path)
        rdir = top / DIRNAME
        if rdir.exists():
            if _is_rewind_dir(rdir):
                return cls.open(rdir)
            if not rdir.is_dir():
                raise NotARepositoryError(f"{rdir} is not a rewind repository (it is a file)",
                                          hint="move it away or choose another directory")
            if any(rdir.iterdir()):
                raise NotARepositoryError(
                    f"{rdir} exists but is not a rewind repository",
                    hint="move it away or choose another directory",
                )
        if top.exists() and not top.is_dir():
            raise NotARepositoryError(f"{top} is a file, not a directory", hint="choose a directory")
        top.mkdir(parents=True, exist_ok=True)
        git = pygit2.init_repository(str(rdir), bare=True)
        config = git.config
        config[FORMAT_KEY] = FORMAT_VERSION
        config["core.logallrefupdates"] = False
        (rdir / "description").write_text("rewind repository of agent recordings\n")
        for sub in ("hooks", "journal", _lease.LOCKS_DIR, "cache"):
            (rdir / sub).mkdir(exist_ok=True)
        ignore_everything(rdir)
        return cls(rdir)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Self:
        """Open a repository given its ``.rewind`` directory, or the directory holding it.

        Refuses a repository whose ``rewind.format`` is newer than this rewind
        reads (:class:`FormatTooNewError`): an old rewind never half-reads,
        or writes into, a layout it does not know.
        """
        p = _checked_path(path)
        try:
            if p.name != DIRNAME and (p / DIRNAME).exists():
                p = p / DIRNAME
            exists = p.exists()
        except OSError as exc:
            raise NotARepositoryError(f"cannot open {p}: {exc.strerror}") from None
        if not exists:
            raise NotARepositoryError(f"no rewind repository at {p}", hint="run 'rewind init' first")
        if not p.is_dir():
            raise NotARepositoryError(f"{p} is not a rewind repository (it is a file)",
                                      hint="move it away, or point REWIND_DIR at a .rewind directory")
        if not _is_rewind_dir(p):
            raise NotARepositoryError(
                f"{p} is not a rewind repository",
                hint="point REWIND_DIR at a .rewind directory, or run 'rewind init'",
            )
        check_format(p)
        return cls(p)

    @classmethod
    def find(cls, start: str | os.PathLike[str] = ".") -> Self:
        """Walk up from ``start`` to the first directory holding ``.rewind/``, as git finds ``.git``."""
        here = _checked_path(start)
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

    def commit(self, oid: str | pygit2.Oid) -> pygit2.Commit:
        """The commit ``oid``; FormatError (never KeyError or AttributeError) when it is missing or no commit."""
        import pygit2

        try:
            obj = self.git.get(oid)
        except (ValueError, pygit2.GitError) as exc:
            raise FormatError(f"cannot read object {str(oid)[:12]}: {exc}", hint="run 'rewind fsck'") from None
        if not isinstance(obj, pygit2.Commit):
            what = "missing" if obj is None else f"a {type(obj).__name__.lower()}, not a commit"
            raise FormatError(f"object {str(oid)[:12]} is {what}", hint="run 'rewind fsck'")
        return obj

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
        """Hold the per-session writer lease (see :mod:`rewind_vcs.store.lease`); yields whether it was acquired."""
        held = _lease.Lease.acquire(self.path, session_id, blocking=blocking)
        try:
            yield held is not None
        finally:
            if held is not None:
                held.release()

    def is_leased(self, session_id: str) -> bool:
        """Whether a live process holds the writer lease of this session."""
        return _lease.is_leased(self.path, session_id)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


def check_format(rdir: Path) -> int:
    """The repository's ``rewind.format``; FormatTooNewError when newer than :data:`FORMAT_VERSION`."""
    raw = _read_config(rdir).get(FORMAT_KEY, "")
    try:
        found = int(raw)
    except ValueError:
        raise FormatError(f"{rdir / 'config'}: {FORMAT_KEY} = {raw[:40]!r} is not a format number",
                          hint=f"set it to {FORMAT_VERSION}, or restore the repository's config") from None
    if found > FORMAT_VERSION:
        raise FormatTooNewError(f"repository {rdir}", found, FORMAT_VERSION)
    if found < 1:
        raise FormatError(f"{rdir / 'config'}: {FORMAT_KEY} = {found} is not a format this rewind knows",
                          hint=f"set it to {FORMAT_VERSION}")
    return found


def _checked_path(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if len(text) > _MAX_PATH:
        raise NotARepositoryError(f"repository path is {len(text):,} characters long",
                                  hint=f"paths longer than {_MAX_PATH} characters are refused")
    if "\0" in text:
        raise NotARepositoryError("repository path holds a NUL character", hint="check REWIND_DIR")
    return Path(text).absolute()


class _CaseConfigParser(configparser.RawConfigParser):
    def optionxform(self, optionstr: str) -> str:  # keep git's case rules simple: lower-case keys
        return optionstr.lower()


def _read_config(rdir: Path) -> dict[str, str]:
    """Flatten git's config into ``{"section.key": value}`` (subsections as ``section.sub.key``)."""
    parser = _CaseConfigParser(strict=False, interpolation=None)
    try:
        parser.read(rdir / "config", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise RewindError(f"{rdir / 'config'} is not a valid config file ({str(exc)[:200]})",
                          hint="restore it from a backup, or fix it by hand") from None
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


def _is_rewind_dir(p: Path) -> bool:
    try:
        if not p.is_dir() or not (p / "HEAD").exists() or not (p / "objects").is_dir():
            return False
    except OSError as exc:
        log.warning("cannot look into %s: %s", p, exc)
        return False
    return FORMAT_KEY in _read_config(p)  # a git directory with a broken config: its own one-line error


__all__ = ["DIRNAME", "FORMAT_KEY", "GitDir", "check_format", "ignore_everything"]


def ignore_everything(rdir: Path) -> None:
    """``.rewind/.gitignore`` holding ``*``: ``git add -A`` in the enclosing work tree takes nothing.

    Recordings travel by ``rewind push`` and ``.rw`` files, never as files of
    the project's own repository (git treats a bare repository inside a work
    tree as ordinary files).
    """
    path = rdir / ".gitignore"
    if not path.exists():
        path.write_text("# rewind: recordings travel by 'rewind push' and .rw files, never in the project's git\n*\n")

