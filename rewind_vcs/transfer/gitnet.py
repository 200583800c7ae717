"""Talking to the other side through libgit2: credentials, progress, errors, the advertised refs.

Nothing here prints: progress goes to a callback of :class:`Progress`, and
libgit2's failures become one-line :class:`RemoteError`\\ s (unreachable,
authentication, anything else).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import CredentialType

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.refs import SESSIONS
from rewind_vcs.transfer.incoming import SHARED_PREFIXES
from rewind_vcs.transfer.remotes import Endpoint


class Phase(StrEnum):
    """What a transfer is doing; ``total is None`` means no count is known (show a spinner)."""

    CONNECTING = "connecting"
    COMPRESSING = "compressing"
    SENDING = "sending"
    RECEIVING = "receiving"
    RESOLVING = "resolving"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    done: int = 0
    total: int | None = None
    bytes: int = 0
    message: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Credentials:
    """How to authenticate, in the order tried; the CLI fills this from the environment.

    - ssh: the agent (``ssh_agent``), then each private key file in ``ssh_keys``
      (``<key>.pub`` beside it), unencrypted or with ``ssh_passphrase``;
    - https: ``token`` (as the password, with ``username``, the URL's user, or
      ``x-access-token``), then ``git credential fill`` when ``credential_helper``
      (run with ``helper_env``; approved on success, rejected on failure, as git does).
    """

    token: str | None = None
    username: str | None = None
    ssh_agent: bool = True
    ssh_keys: tuple[Path, ...] = ()
    ssh_passphrase: str = ""
    credential_helper: bool = False
    helper_env: Mapping[str, str] | None = None


def direction(name: str) -> int:
    enum = getattr(pygit2.enums, "Direction", None)
    if enum is not None:
        return int(getattr(enum, name))
    return {"FETCH": 0, "PUSH": 1}[name]


def advertised(conn: pygit2.Remote) -> dict[str, str]:
    """The refs the other side advertises (``HEAD`` and peeled ``^{}`` entries dropped)."""
    out: dict[str, str] = {}
    for head in conn.list_heads(connect=False):
        name = head.name or ""
        if name == "HEAD" or name.endswith("^{}"):
            continue
        out[name] = str(head.oid)
    return out


def check_rewind_remote(end: Endpoint, theirs: Mapping[str, str]) -> None:
    """An empty repository is fine; one with branches and no sessions is somebody's code."""
    foreign = sorted(r for r in theirs if not r.startswith(SHARED_PREFIXES))
    if foreign and not any(r.startswith(SESSIONS) for r in theirs):
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise RemoteError(
            f"{end.describe()} is not a rewind repository (it holds {foreign[0]}{more}, and no sessions)",
            hint="use an empty repository for sessions (e.g. git init --bare team-sessions.git)",
        )


def emit(progress: ProgressCallback | None, p: Progress) -> None:
    if progress is not None:
        progress(p)


@contextmanager
def network(end: Endpoint, callbacks: Callbacks) -> Iterator[None]:
    """Turn libgit2's failures into one line each: unreachable, authentication, anything else."""
    try:
        yield
    except RemoteError:
        callbacks.reject()
        raise
    except pygit2.AuthError as exc:
        callbacks.reject()
        raise _auth_error(end, str(exc)) from None
    except (pygit2.GitError, OSError) as exc:
        text = " ".join(str(exc).split())
        if re.search(r"authenticat|\b401\b|\b403\b|unauthori[sz]ed|permission denied \(publickey", text, re.I):
            callbacks.reject()
            raise _auth_error(end, text) from None
        if callbacks.connected:
            raise RemoteError(f"transfer with {end.describe()} failed: {text}",
                              hint="try again; 'rewind fsck' checks this repository") from None
        raise RemoteError(f"cannot reach {end.describe()}: {text}",
                          hint="check the URL, that the server is up, and the network") from None


def _auth_error(end: Endpoint, detail: str) -> RemoteError:
    return RemoteError(
        f"authentication failed for {end.describe()} ({detail})",
        hint="set REWIND_GIT_TOKEN (https), load your key into ssh-agent (ssh), or configure a git credential helper",
    )


class Callbacks(pygit2.RemoteCallbacks):
    """libgit2's callbacks: credentials, progress, and the server's verdict on each pushed ref."""

    def __init__(self, credentials: Credentials | None, progress: ProgressCallback | None) -> None:
        super().__init__()
        self.creds = credentials or Credentials()
        self.progress = progress
        self.tried: set[str] = set()
        self.helper_fill: dict[str, str] | None = None
        self.helper_url: str | None = None
        self.server_verdicts: dict[str, str | None] = {}
        self.sent_objects = self.sent_bytes = 0
        self.received_objects = self.received_bytes = 0
        self.connected = False

    # credentials: each way is tried once; running out is an authentication failure
    def credentials(self, url: str, username_from_url: str | None, allowed: CredentialType) -> Any:
        c = self.creds
        user = username_from_url or c.username
        if allowed & CredentialType.SSH_KEY:
            if c.ssh_agent and "agent" not in self.tried:
                self.tried.add("agent")
                return pygit2.KeypairFromAgent(user or "git")
            for key in c.ssh_keys:
                if f"key:{key}" not in self.tried:
                    self.tried.add(f"key:{key}")
                    return pygit2.Keypair(user or "git", str(key) + ".pub", str(key), c.ssh_passphrase)
        if allowed & CredentialType.USERPASS_PLAINTEXT:
            if c.token and "token" not in self.tried:
                self.tried.add("token")
                return pygit2.UserPass(user or "x-access-token", c.token)
            if c.credential_helper and "helper" not in self.tried:
                self.tried.add("helper")
                filled = _credential_helper("fill", url, user, c.helper_env)
                if filled and filled.get("password"):
                    self.helper_fill, self.helper_url = filled, url
                    return pygit2.UserPass(filled.get("username") or user or "", filled["password"])
        if allowed & CredentialType.USERNAME and "username" not in self.tried:
            self.tried.add("username")
            return pygit2.Username(user or "git")
        raise RemoteError(
            f"authentication failed for {url}" + (" (no credentials to offer)" if not self.tried else ""),
            hint="set REWIND_GIT_TOKEN (https), load your key into ssh-agent (ssh), "
            "or configure a git credential helper",
        )

    def approve(self) -> None:
        if self.helper_fill and self.helper_url:
            _credential_helper("approve", self.helper_url, None, self.creds.helper_env, self.helper_fill)

    def reject(self) -> None:
        if self.helper_fill and self.helper_url:
            _credential_helper("reject", self.helper_url, None, self.creds.helper_env, self.helper_fill)

    # progress
    def sideband_progress(self, text: str) -> None:
        if self.progress is not None:
            self.progress(Progress(Phase.COMPRESSING, message=text.strip()))

    def transfer_progress(self, stats: Any) -> None:
        self.received_objects, self.received_bytes = stats.received_objects, stats.received_bytes
        if self.progress is None:
            return
        if stats.received_objects < stats.total_objects or not stats.total_deltas:
            self.progress(Progress(Phase.RECEIVING, stats.received_objects, stats.total_objects,
                                   stats.received_bytes))
        else:
            self.progress(Progress(Phase.RESOLVING, stats.indexed_deltas, stats.total_deltas,
                                   stats.received_bytes))

    def push_transfer_progress(self, objects: int, total: int, nbytes: int) -> None:
        self.sent_objects, self.sent_bytes = objects, nbytes
        if self.progress is not None:
            self.progress(Progress(Phase.SENDING, objects, total, nbytes))

    # the server's verdict per ref: libgit2 does not raise on a refusal
    def push_update_reference(self, refname: str, message: str | None) -> None:
        self.server_verdicts[refname] = message


def _credential_helper(
    action: str, url: str, username: str | None, env: Mapping[str, str] | None,
    filled: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """``git credential fill|approve|reject`` (the user's credential helpers, as git runs them)."""
    git_bin = shutil.which("git")
    if git_bin is None:
        return None
    lines = dict(filled) if filled else {"url": url}
    if username and "username" not in lines:
        lines["username"] = username
    text = "".join(f"{k}={v}\n" for k, v in lines.items()) + "\n"
    try:
        proc = subprocess.run([git_bin, "credential", action], input=text, capture_output=True, text=True,
                              env=dict(env) if env is not None else None, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if action != "fill" or proc.returncode != 0:
        return None
    out = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out

