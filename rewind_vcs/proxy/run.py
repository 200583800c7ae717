"""Running a command behind the proxy: ``record`` and ``replay`` as library calls.

:func:`record_run` opens a session, starts the proxy on a free loopback port,
runs the command with an environment that sends the official SDKs through
it (base URLs and ``HTTPS_PROXY`` with a CA bundle), tees the child's stdout,
and closes the session with the exit code and output digest.

:func:`replay_run` serves a recorded timeline instead of the upstream; from a
fork point (``checkout ...@step-N`` or ``--from``) it serves the cache and
records the live tail as a new timeline.

Nothing here reads the environment or prints: the CLI passes ``env`` and an
output stream, and gets typed results back.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rewind_vcs.errors import ConfigError, RefError, RewindError, UntrustedCommandError
from rewind_vcs.proxy.env import child_environment, upstreams_from_environment
from rewind_vcs.proxy.handler import ForwardHandler, ProxyRequest, ProxyResponse
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.replayer import Latency, OnMiss, ReplayHandler, ReplayStats
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.server import ProxyServer
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool, upstream_ssl_context
from rewind_vcs.store.arrivals import arrival_of
from rewind_vcs.store.records import EndInfo, Exchange, SessionInfo
from rewind_vcs.store.writer import SessionWriter

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.resolve import Target
    from rewind_vcs.store.session import Step, Timeline

#: Seconds without a new exchange after which journalled exchanges are committed.
IDLE_FLUSH_SECONDS = 0.5


@dataclass
class ProxySettings:
    """Where requests go: provider upstream overrides, extra hosts to record, the upstream CA."""

    upstreams: dict[str, str] = field(default_factory=dict)
    record_hosts: dict[str, str | None] = field(default_factory=dict)  # host -> upstream override
    upstream_ca: str | None = None
    timeout: float = 600.0

    def routes(self, env: Mapping[str, str]) -> Routes:
        # A base URL the user's environment already sets (a gateway, a local model
        # server) becomes that provider's upstream, unless overridden explicitly.
        merged = {**upstreams_from_environment(env), **self.upstreams}
        return Routes(merged, self.record_hosts)

    def pool(self) -> UpstreamPool:
        return UpstreamPool(upstream_ssl_context(self.upstream_ca), read_timeout=self.timeout)


class RecordingHandler:
    """Forwards live and journals every finished exchange into a :class:`Recorder`."""

    def __init__(self, recorder: Recorder, pool: UpstreamPool, timeout: float,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.recorder = recorder
        self.pool = pool
        self.timeout = timeout
        self.on_error = on_error
        self.last_activity = time.monotonic()

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        self.last_activity = time.monotonic()
        spool = self.recorder.spool()

        def on_exchange(exchange: Exchange) -> None:
            self.last_activity = time.monotonic()
            self.recorder.record(exchange, request.provider_hint, request.session_tag, spool)

        forward = ForwardHandler(self.pool, on_exchange, self.timeout, on_error=self.on_error, body_sink=spool)
        return await forward.handle(request)

    async def aclose(self) -> None:
        await self.pool.aclose()


class IdleFlusher:
    """Commits journalled exchanges whenever the proxy has been quiet for a moment."""

    def __init__(self, recorder: Recorder, handler: RecordingHandler,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.recorder = recorder
        self.handler = handler
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rewind-flusher", daemon=True)

    def start(self) -> IdleFlusher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            if self._quiet() and self.recorder.pending:
                try:
                    self.recorder.flush(should_stop=lambda: not self._quiet())
                except Exception as exc:  # noqa: BLE001 - the journal keeps the exchange; report
                    if self.on_error:
                        self.on_error(f"committing steps failed (they stay in the journal): {exc}")

    def _quiet(self) -> bool:
        return time.monotonic() - self.handler.last_activity >= IDLE_FLUSH_SECONDS

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class RunningProxy:
    server: ProxyServer
    port: int
    bundle: Path

    def child_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return child_environment(env, self.port, str(self.bundle))

    def stop(self) -> None:
        self.server.stop()


def start_proxy(repo: Repo, handler: Any, routes: Routes, *, port: int = 0,
                on_error: Callable[[str], None] | None = None) -> RunningProxy:
    """The proxy on 127.0.0.1 with the repository's CA (created on first use)."""
    ca = CertificateAuthority.load_or_create(repo.path / "ca")
    bundle = ca.write_bundle(repo.path / "ca" / "bundle.pem")
    server = ProxyServer(handler, routes, ca, port=port, on_error=on_error)
    return RunningProxy(server, server.start_in_thread(), bundle)  # a busy port is a ConfigError


# -- the child --------------------------------------------------------------------------------

@dataclass
class ChildResult:
    exit_code: int
    stdout: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.stdout).hexdigest()


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
    assert proc.stdout is not None
    try:
        while True:
            data = proc.stdout.read1(65536)
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


# -- record -------------------------------------------------------------------------------------

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
) -> RecordResult:
    """Record ``command``: every LLM call it makes becomes a step of a new session."""
    settings = settings or ProxySettings()
    routes = settings.routes(env)
    info = SessionInfo(name=name, command=list(command), cwd=cwd, code_version=code_version(cwd),
                       extra={"record_hosts": sorted(settings.record_hosts)} if settings.record_hosts else {})
    writer = SessionWriter.create(repo, info)
    recorder = Recorder(repo, info, writer=writer)
    handler = RecordingHandler(recorder, settings.pool(), settings.timeout, on_error)
    try:
        proxy = start_proxy(repo, handler, routes, on_error=on_error)
    except BaseException:
        recorder.abandon()
        raise
    if on_start:
        on_start(writer.id, proxy.port)
    flusher = IdleFlusher(recorder, handler, on_error).start()
    try:
        child = run_child(command, proxy.child_env(env), cwd, out)
    except BaseException:
        proxy.stop()
        flusher.stop()
        recorder.abandon()
        raise
    proxy.stop()
    flusher.stop()
    writers = recorder.finish(EndInfo(exit_code=child.exit_code, stdout_digest=child.digest, stdout=child.stdout))
    return RecordResult(writer.id, writer.steps, child.exit_code, child.digest, recorder.vetoed,
                        [w.id for w in writers if w.id != writer.id], recorder.disk_full, recorder.dropped)


# -- replay -------------------------------------------------------------------------------------

@dataclass
class Savings:
    steps: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


@dataclass
class ReplayResult:
    session_id: str
    timeline: str
    stats: ReplayStats
    exit_code: int
    output_identical: bool | None  # None when the recording has no stdout to compare
    stdout: bytes
    recorded_stdout: bytes | None
    new_timeline: str | None = None
    new_steps: int = 0
    fork_point: int | None = None
    savings: Savings = field(default_factory=Savings)


def savings_of(steps: list[Step], served: list[int]) -> Savings:
    by_n = {s.n: s for s in steps}
    out = Savings()
    for n in served:
        info = by_n[n].info
        out.steps += 1
        out.tokens += info.usage.total
        out.cost_usd += info.cost_usd or 0.0
        out.seconds += info.latency_ms / 1000.0
    return out


def replay_run(
    repo: Repo,
    target: Target,
    command: list[str] | None = None,
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    latency: Latency = Latency(),
    on_miss: OnMiss = OnMiss.ERROR,
    fork_at: int | None = None,
    timeline_name: str | None = None,
    settings: ProxySettings | None = None,
    out: IO[bytes] | None = None,
    on_event: Callable[[object], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    allow_recorded_command: bool = False,
) -> ReplayResult:
    """Re-run a command against a recording.

    ``fork_at`` = N serves steps 1..N as a cache (drift reported) and records
    every later call, made live, on a new timeline forked at step N. Without
    it the whole timeline is served and a request that matches nothing is a
    miss (or, with ``on_miss=live``, forwarded and recorded on a new timeline).

    Without ``command`` the recorded one runs, in the recorded directory. For
    a session not recorded in this repository (imported, fetched, unknown)
    that happens only with ``allow_recorded_command``; otherwise
    :class:`UntrustedCommandError` is raised before anything is started or
    written. With an explicit ``command``, such a session's recorded
    directory is not used either (the command runs in ``cwd`` or here).
    """
    settings = settings or ProxySettings()
    session = repo.session(target.session_id)
    timeline: Timeline = session.timeline(target.timeline or "main")
    if fork_at is None and target.step is not None:
        fork_at = target.step
    all_steps = timeline.steps
    if fork_at is not None and not 0 <= fork_at <= len(all_steps):
        raise RefError(f"cannot fork at step {fork_at}: {session.id}/{timeline.name} has {len(all_steps)} steps")
    steps = all_steps if fork_at is None else all_steps[:fork_at]
    info = session.info
    arrival = arrival_of(repo.path, session.id)
    trusted = arrival.trusted
    if not command and not trusted and not allow_recorded_command:
        raise UntrustedCommandError(session.id, arrival.origin.value, arrival.source,
                                    list(info.command), info.cwd)
    use_recorded_cwd = trusted or allow_recorded_command or not command
    command = list(command or info.command)
    run_cwd = cwd or (info.cwd if use_recorded_cwd else None) or None
    if run_cwd and not Path(run_cwd).is_dir():
        raise ConfigError(f"the recorded working directory {run_cwd} does not exist here",
                          hint="pass the command after -- and run it from the right directory")

    # Replay intercepts the hosts the recording intercepted (--record-host), with no upstream needed.
    for host in info.extra.get("record_hosts", []):
        settings.record_hosts.setdefault(host, None)
    routes = settings.routes(env)
    recorder: Recorder | None = None
    live_handler: RecordingHandler | None = None
    replay: ReplayHandler | None = None
    fork_state: dict[str, Any] = {}

    def fork_writer() -> SessionWriter:
        point = fork_at
        if point is None:  # --on-miss live: fork where the served prefix ends
            served = sorted(replay.stats.served) if replay else []
            point = 0
            while point + 1 in served:
                point += 1
        at = timeline.commits[point] if point else timeline.commits[0]
        w = SessionWriter.fork(repo, session.id, at, timeline_name)
        fork_state["point"] = point
        return w

    if fork_at is not None or on_miss is OnMiss.LIVE:
        recorder = Recorder(repo, info, writer_factory=fork_writer, split_by_tag=False)
        live_handler = RecordingHandler(recorder, settings.pool(), settings.timeout, on_error)
    replay = ReplayHandler(steps, latency=latency, drift_ok=fork_at is not None, live=live_handler,
                           on_event=on_event)
    if fork_at is not None:
        recorder.ensure_writer()  # the new timeline exists from the start, even if nothing goes live
    proxy = start_proxy(repo, replay, routes, on_error=on_error)
    flusher = IdleFlusher(recorder, live_handler, on_error).start() if recorder and live_handler else None
    try:
        child = run_child(command, proxy.child_env(env), run_cwd, out)
    except BaseException:
        proxy.stop()
        if flusher:
            flusher.stop()
        if recorder:
            recorder.abandon()
        raise
    proxy.stop()
    if flusher:
        flusher.stop()
    new_timeline = None
    new_steps = 0
    if recorder is not None:
        writers = recorder.finish(EndInfo(exit_code=child.exit_code, stdout=child.stdout,
                                          stdout_digest=child.digest))
        if writers:
            new_timeline = writers[0].timeline
            new_steps = writers[0].steps - (fork_state.get("point") or 0)
    end = timeline.end
    recorded = end.stdout if end else None
    identical = None
    if end is not None and end.stdout_digest:
        identical = end.stdout_digest == child.digest
    return ReplayResult(
        session_id=session.id,
        timeline=timeline.name,
        stats=replay.stats,
        exit_code=child.exit_code,
        output_identical=identical,
        stdout=child.stdout,
        recorded_stdout=recorded,
        new_timeline=new_timeline,
        new_steps=new_steps,
        fork_point=fork_state.get("point", fork_at),
        savings=savings_of(all_steps, replay.stats.served),
    )


__all__ = ["ProxySettings", "RecordResult", "ReplayResult", "RewindError", "record_run", "replay_run"]
