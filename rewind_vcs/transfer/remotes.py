"""Configured remotes (``[remote "NAME"]`` in ``.rewind/config``) and what a typed remote means.

``REMOTE`` on the command line is a configured name or a URL/path typed
directly (as git accepts both). A local path to a project holding ``.rewind/``
means that ``.rewind``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.repo import DIRNAME, Repo
from rewind_vcs.transfer.refupdate import REFSPECS

DEFAULT_REMOTE = "origin"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:")  # user@host:path, as git reads it


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str
    push_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "push_url": self.push_url}


def list_remotes(repo: Repo) -> list[RemoteInfo]:
    git = repo.git
    return sorted((RemoteInfo(r.name, r.url or "", r.push_url) for r in git.remotes if r.name),
                  key=lambda r: r.name)


def get_remote(repo: Repo, name: str) -> RemoteInfo:
    for r in list_remotes(repo):
        if r.name == name:
            return r
    known = ", ".join(r.name for r in list_remotes(repo))
    raise RemoteError(f"unknown remote '{name}'" + (f" (remotes: {known})" if known else " (no remotes yet)"),
                      hint=f"add it: rewind remote add {name} URL")


def default_remote_name(repo: Repo) -> str:
    """``origin`` when it exists (or nothing is configured), else the only remote there is."""
    names = sorted(n for n in repo.git.remotes.names() if n)
    if DEFAULT_REMOTE in names or not names:
        return DEFAULT_REMOTE
    if len(names) == 1:
        return names[0]
    raise RemoteError(f"no remote named '{DEFAULT_REMOTE}' and several others ({', '.join(names)})",
                      hint="name the remote: rewind push NAME")


def add_remote(repo: Repo, name: str, url: str) -> RemoteInfo:
    """Configure a remote (``[remote "NAME"]`` in ``.rewind/config``, with rewind's refspecs).

    A plain relative path is stored absolute, so the remote works from any
    directory (git stores a clone's local origin the same way).
    """
    if not _NAME_RE.match(name) or name.endswith(".lock"):
        raise RemoteError(f"'{name}' is not a valid remote name", hint="use letters, digits, '.', '_' and '-'")
    url = url.strip()
    if not url:
        raise RemoteError("empty remote URL", hint="give a path, file://, git://, ssh:// or https:// URL")
    if _is_plain_path(url):
        url = os.path.abspath(Path(url).expanduser())
    git = repo.git
    if name in set(git.remotes.names()):
        raise RemoteError(f"remote '{name}' already exists ({git.remotes[name].url})",
                          hint=f"remove it first: rewind remote remove {name}")
    git.remotes.create(name, url, REFSPECS[0])
    for spec in REFSPECS[1:]:
        git.remotes.add_fetch(name, spec)
    for spec in REFSPECS:
        git.remotes.add_push(name, spec)
    git.config[f"remote.{name}.tagOpt"] = "--no-tags"  # tags travel by refspec, never auto-followed
    return RemoteInfo(name, url)


def remove_remote(repo: Repo, name: str) -> None:
    get_remote(repo, name)
    repo.git.remotes.delete(name)


def default_clone_directory(url: str) -> str:
    """The directory ``clone`` creates when none is given, as git names it (``host/team.git`` -> ``team``)."""
    tail = url.rstrip("/")
    if tail.endswith("/" + DIRNAME):
        tail = tail[: -len(DIRNAME) - 1]
    tail = re.split(r"[/:]", tail)[-1]
    for suffix in (".git", ".rewind"):
        if tail.endswith(suffix) and len(tail) > len(suffix):
            tail = tail[: -len(suffix)]
    if not tail or tail in (".", ".."):
        raise RemoteError(f"cannot name a directory after '{url}'", hint="give the directory: rewind clone URL DIR")
    return tail




# -- what a typed remote means ------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    name: str | None
    url: str  # what libgit2 is given

    @property
    def label(self) -> str:
        return self.name or self.url

    def describe(self) -> str:
        return f"remote '{self.name}' ({self.url})" if self.name else self.url


def endpoint(repo: Repo, spec: str, *, push: bool) -> Endpoint:
    """A configured remote's name, or a URL or path typed directly (as git accepts both)."""
    names = set(repo.git.remotes.names())
    if spec in names:
        r = repo.git.remotes[spec]
        url = (r.push_url or r.url) if push else r.url
        return Endpoint(spec, _libgit2_url(url or "", spec))
    if _looks_like_url(spec):
        return Endpoint(None, _libgit2_url(spec))
    return Endpoint(get_remote(repo, spec).name, "")  # get_remote raises "unknown remote"

def _looks_like_url(spec: str) -> bool:
    return bool(_SCHEME_RE.match(spec) or _SCP_RE.match(spec)) or "/" in spec or Path(spec).exists()


def _is_plain_path(url: str) -> bool:
    return not _SCHEME_RE.match(url) and not (_SCP_RE.match(url) and not Path(url).exists())


def _libgit2_url(url: str, name: str | None = None) -> str:
    """Local paths: a project holding ``.rewind/`` means that ``.rewind``; a missing path fails clearly."""
    if url.startswith("file://"):
        path = Path(url[len("file://"):])
        if (path / DIRNAME).is_dir():
            return f"file://{path / DIRNAME}"
        if not path.exists():
            raise _no_such_directory(url, name)
        return url
    if not _is_plain_path(url):
        return url
    path = Path(os.path.abspath(Path(url).expanduser()))
    if (path / DIRNAME).is_dir():
        return str(path / DIRNAME)
    if not path.exists():
        raise _no_such_directory(url, name)
    return str(path)


def _no_such_directory(url: str, name: str | None) -> RemoteError:
    return RemoteError(f"cannot reach {Endpoint(name, url).describe()}: no such directory",
                       hint="check the path" + (f" (rewind remote remove {name}, then add it again)" if name else ""))

