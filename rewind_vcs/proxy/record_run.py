"""``record`` as a library call: run a command behind the recording proxy, one new session.

:func:`record_run` opens the session (so its id is known before the child
starts), runs the command in a :class:`~rewind_vcs.proxy.lifecycle.ProxySession`
with an environment that sends the official SDKs through it, tees the
child's stdout, and closes the session with the exit code and output
digest. Nothing here reads the environment or prints: the CLI passes
``env`` and an output stream, and gets a typed result back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING

from rewind_vcs.proxy.child import code_version, run_child
from rewind_vcs.proxy.clock import SYSTEM_CLOCK, Clock
from rewind_vcs.proxy.lifecycle import ProxySession, ProxySettings, RecordingHandler
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.store.records import EndInfo, SessionInfo
from rewind_vcs.store.writer import SessionWriter

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo


@dataclass
class RecordResult:
    session_id: str
    steps: int
    exit_code: int
    stdout_digest: str
    vetoed: int = 0
    other_sessions: list[str] = field(default_factory=list)
    disk_full: bool = False  # recording stopped early: the disk filled up
    dropped: int = 0  # calls relayed but not recorded (after the disk filled up)


def record_run(
    repo: Repo,
    command: list[str],
    *,
    env: Mapping[str, str],
    cwd: str,
    name: str | None = None,
    settings: ProxySettings | None = None,
    out: IO[bytes] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_start: Callable[[str, int], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> RecordResult:
    """Record ``command``: every LLM call it makes becomes a step of a new session.

    ``on_error`` receives the proxy server's reports (relay failures); the
    recorder's own problems are logged.
    """
    settings = settings or ProxySettings()
    routes = settings.routes(env)
    info = SessionInfo(name=name, command=list(command), cwd=cwd, code_version=code_version(cwd),
                       started_at=clock.time(),
                       extra={"record_hosts": sorted(settings.record_hosts)} if settings.record_hosts else {})
    writer = SessionWriter.create(repo, info)
    recorder = Recorder(repo, info, writer=writer)
    handler = RecordingHandler(recorder, settings.pool(), settings.timeout, on_error, clock=clock)
    with ProxySession(repo, handler, routes, recorder=recorder, recording=handler, on_error=on_error,
                      ca_dir=settings.ca_dir) as proxy:
        if on_start:
            on_start(writer.id, proxy.port)
        child = run_child(command, proxy.child_env(env), cwd, out)
        writers = proxy.finish(EndInfo(exit_code=child.exit_code, stdout_digest=child.digest,
                                       stdout=child.stdout, ended_at=clock.time()))
    return RecordResult(writer.id, writer.steps, child.exit_code, child.digest, recorder.vetoed,
                        [w.id for w in writers if w.id != writer.id], recorder.disk_full, recorder.dropped)
