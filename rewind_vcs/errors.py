"""One error hierarchy for the whole package.

Every error a user can cause is a :class:`RewindError` whose ``str()`` is one
line naming the problem and what to do. The CLI prints that line and exits
with ``exit_code``; it never shows a traceback for these.
"""

from __future__ import annotations


class RewindError(Exception):
    """Base of every error rewind raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}; {hint}")


class NotARepositoryError(RewindError):
    """No `.rewind/` here or above, or a path that is not a rewind repository."""


class RefError(RewindError):
    """A ref the user typed cannot be resolved (unknown, ambiguous, out of range)."""


class AmbiguousRefError(RefError):
    """A ref names more than one thing: several sessions, or a tag and a session."""

    def __init__(self, spec: str, candidates: list[str], *, hint: str | None = None) -> None:
        self.candidates = candidates
        shown = ", ".join(candidates[:10]) + (" ..." if len(candidates) > 10 else "")
        super().__init__(
            f"ref '{spec}' is ambiguous: it matches {shown}",
            hint=hint or "type more characters of the session id",
        )


class FormatError(RewindError):
    """A stored record is unreadable: corrupt, or written by a newer rewind."""


class FormatTooNewError(FormatError):
    def __init__(self, what: str, found: int, supported: int) -> None:
        super().__init__(
            f"{what} has format {found}, but this rewind reads up to format {supported}",
            hint="upgrade rewind: pip install -U rewind-vcs",
        )


class ConflictError(RewindError):
    """A compare-and-swap ref update lost a race: someone else moved the ref."""


class ReplayMissError(RewindError):
    """A request during replay matched no recorded step."""


class UpstreamError(RewindError):
    """The upstream could not be reached."""


class ConfigError(RewindError):
    """Bad configuration or bad command-line values."""


class RemoteError(RewindError):
    """A push, fetch or clone failed."""


class UntrustedCommandError(RewindError):
    """Replay would run the recorded command of a session not recorded in this repository.

    A session that arrived by import, fetch, pull or clone (or whose arrival is
    unknown) was written by someone else: its recorded command line and
    working directory are data, never run without the user's consent. The CLI
    shows ``command`` and ``cwd`` and asks, or takes ``--yes`` or ``-- CMD``.
    """

    def __init__(self, session_id: str, origin: str, source: str, command: list[str], cwd: str) -> None:
        self.session_id = session_id
        self.origin = origin
        self.source = source
        self.command = command
        self.cwd = cwd
        where = f"{origin} from {source}" if source else origin
        super().__init__(
            f"session {session_id} was not recorded in this repository ({where}): "
            "rewind does not run its recorded command by itself",
            hint=f"check it with 'rewind show {session_id}', then pass --yes to run it, "
            "or give your own command after --",
        )
