"""The recorded (or replayed) command: running it, teeing its stdout, and the code it runs.

Nothing here knows about the proxy: :func:`run_child` takes the environment
the proxy lifecycle built (:meth:`ProxySession.child_env
<rewind_vcs.proxy.lifecycle.ProxySession.child_env>`).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rewind_vcs.errors import ConfigError


@dataclass
class ChildResult:
    exit_code: int
    stdout: bytes

    @property
    def digest(self) -> str:
        """Of the redacted output (what is stored): a digest of a key would let a guess be checked."""
        from rewind_vcs.store.redact import redact_output

        return "sha256:" + hashlib.sha256(redact_output(self.stdout)).hexdigest()


def run_child(command: list[str], env: Mapping[str, str], cwd: str | None, out: IO[bytes] | None) -> ChildResult:
    """Run ``command``; stdin and stderr pass through, stdout is teed to ``out`` as it comes."""
    if not command:
        raise ConfigError("no command to run", hint="give one after --, e.g. rewind record -- python agent.py")
    try:
        proc = subprocess.Popen(command, env=dict(env), cwd=cwd, stdout=subprocess.PIPE)
    except FileNotFoundError:
        raise ConfigError(f"command not found: {command[0]}", hint="check the command and your PATH") from None
    except PermissionError:
        raise ConfigError(f"cannot execute {command[0]}: permission denied") from None
    except NotADirectoryError:
        raise ConfigError(f"working directory {cwd} does not exist") from None
    captured = bytearray()
    stdout = proc.stdout
    assert stdout is not None
    try:
        while True:
            data = stdout.read1(65536)  # type: ignore[attr-defined]  # a BufferedReader
            if not data:
                break
            captured += data
            if out is not None:
                out.write(data)
                out.flush()
        code = proc.wait()
    except KeyboardInterrupt:
        proc.wait()
        raise
    # A child killed by a signal exits like a shell reports it: 128 + signal number.
    return ChildResult(code if code >= 0 else 128 - code, bytes(captured))


def code_version(cwd: str) -> dict[str, Any] | None:
    """The commit and dirty state of the git work tree ``cwd`` is in (the agent's code), if any."""
    import pygit2

    try:
        path = pygit2.discover_repository(cwd)
        if path is None or Path(path).name == ".rewind":
            return None
        repo = pygit2.Repository(path)
        if repo.is_bare or repo.head_is_unborn:
            return None
        dirty = any(
            flags not in (pygit2.enums.FileStatus.CURRENT, pygit2.enums.FileStatus.IGNORED)
            for flags in repo.status(untracked_files="no").values()
        )
        return {"commit": str(repo.head.target), "dirty": dirty}
    except (pygit2.GitError, KeyError, OSError):
        return None
