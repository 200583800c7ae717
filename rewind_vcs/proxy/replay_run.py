"""``replay`` as a library call: re-run a command against a recorded timeline.

:func:`replay_run` serves the timeline instead of the upstream; from a fork
point (``checkout ...@step-N`` or ``--from``) it serves the cache and
records the live tail as a new timeline. The recorded command of a session
not recorded in this repository runs only when the caller allows it
(:class:`~rewind_vcs.errors.UntrustedCommandError` otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rewind_vcs.errors import ConfigError, RefError, UntrustedCommandError
from rewind_vcs.proxy.child import run_child
from rewind_vcs.proxy.clock import SYSTEM_CLOCK, Clock
from rewind_vcs.proxy.lifecycle import ProxySession, ProxySettings, RecordingHandler
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.replayer import Latency, OnMiss, ReplayHandler, ReplayStats
from rewind_vcs.store.arrivals import arrival_of
from rewind_vcs.store.records import EndInfo
from rewind_vcs.store.writer import SessionWriter

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.resolve import Target
    from rewind_vcs.store.session import Step, Timeline


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
    clock: Clock = SYSTEM_CLOCK,
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
    fork_state: dict[str, int] = {}

    def fork_writer() -> SessionWriter:
        point = fork_at
        if point is None:  # --on-miss live: fork where the served prefix ends
            served = sorted(replay.stats.served)
            point = 0
            while point + 1 in served:
                point += 1
        at = timeline.commits[point] if point else timeline.commits[0]
        w = SessionWriter.fork(repo, session.id, at, timeline_name)
        fork_state["point"] = point
        return w

    if fork_at is not None or on_miss is OnMiss.LIVE:
        recorder = Recorder(repo, info, writer_factory=fork_writer, split_by_tag=False)
        live_handler = RecordingHandler(recorder, settings.pool(), settings.timeout, on_error, clock=clock)
    replay = ReplayHandler(steps, latency=latency, drift_ok=fork_at is not None, live=live_handler,
                           on_event=on_event, clock=clock, redact=repo.config_get_all("rewind.redact"))
    if recorder is not None and fork_at is not None:
        recorder.ensure_writer()  # the new timeline exists from the start, even if nothing goes live
    with ProxySession(repo, replay, routes, recorder=recorder, recording=live_handler, ca_dir=settings.ca_dir,
                      on_error=on_error) as proxy:
        child = run_child(command, proxy.child_env(env), run_cwd, out)
        writers = proxy.finish(EndInfo(exit_code=child.exit_code, stdout=child.stdout,
                                       stdout_digest=child.digest, ended_at=clock.time()))
    new_timeline = None
    new_steps = 0
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
