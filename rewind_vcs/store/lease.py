"""The per-session writer lease: one exclusive ``flock`` on ``locks/<id>.lease``.

The holder of a session's lease is the only process writing that session
(a recorder, a resume after a crash, a fetch updating its timelines), so it
may remove a stale ``<ref>.lock`` left by a killed writer. The kernel drops
the lock when the holder dies, so a lease is never left behind. This is the
one implementation: ``Repo.lease`` and the writer both use it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCKS_DIR = "locks"


def lease_path(repo_path: Path, session_id: str) -> Path:
    return repo_path / LOCKS_DIR / f"{session_id}.lease"


class Lease:
    """An exclusive ``flock`` on one session's lease file, held until :meth:`release`."""

    def __init__(self, fd: int, session_id: str) -> None:
        self._fd: int | None = fd
        self.session_id = session_id

    @classmethod
    def acquire(cls, repo_path: Path, session_id: str, *, blocking: bool = False) -> Lease | None:
        """Take the lease; None when another process holds it (and ``blocking`` is False)."""
        path = lease_path(repo_path, session_id)
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return cls(fd, session_id)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_leased(repo_path: Path, session_id: str) -> bool:
    """Whether a live process holds the lease of this session."""
    path = lease_path(repo_path, session_id)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


__all__ = ["LOCKS_DIR", "Lease", "is_leased", "lease_path"]
