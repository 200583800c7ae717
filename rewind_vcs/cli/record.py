"""``record``, ``replay`` and ``proxy``: running agents behind the proxy."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import typer

from rewind_vcs.cli.common import info, open_repo, print_json
from rewind_vcs.cli.maint import prepare_ca
from rewind_vcs.cli.safe import safe_text
from rewind_vcs.cli.settings import current as current_settings

if TYPE_CHECKING:
    from rewind_vcs.errors import UntrustedCommandError
    from rewind_vcs.proxy.lifecycle import ProxySettings
    from rewind_vcs.proxy.replay_run import ReplayResult
    from rewind_vcs.store.repo import Repo

PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}

#: Set by main() when the command line holds ``--``: everything after it, untouched.
trailing: list[str] | None = None


def register(app: typer.Typer) -> None:
    app.command("record", context_settings=PASSTHROUGH)(record)
    app.command("replay")(replay)
    app.command("proxy")(proxy)


def settings_from(upstream: list[str] | None, record_host: list[str] | None, repo: Repo | None = None) -> ProxySettings:
    """Upstream overrides from --upstream and REWIND_UPSTREAM_* (the flags win); the per-user CA."""
    from rewind_vcs.errors import ConfigError
    from rewind_vcs.proxy.lifecycle import ProxySettings

    env = current_settings()
    ups: dict[str, str] = dict(env.upstreams)
    for item in upstream or []:
        provider, sep, url = item.partition("=")
        if not sep or not url:
            raise ConfigError(f"bad --upstream '{item}'", hint="write PROVIDER=URL, e.g. openai=http://127.0.0.1:8000")
        ups[provider.strip().lower()] = url.strip()
    hosts: dict[str, str | None] = {}
    for item in record_host or []:
        host, _, url = item.partition("=")
        hosts[host.strip()] = url.strip() or None
    return ProxySettings(upstreams=ups, record_hosts=hosts,
                         upstream_ca=env.upstream_ca, timeout=env.upstream_timeout(),
                         ca_dir=prepare_ca(repo) if repo is not None else None)


def _error(message: str) -> None:
    info(f"rewind: {message}", style="yellow")


class _NoDiskFull(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "disk_full", False)  # the command's last line says it


def log_to_stderr(*, skip_disk_full: bool = False) -> None:
    """The library's warnings reach stderr through ``cli.main``'s handler (safe, one line each);
    ``skip_disk_full`` leaves the disk-full warning to the command's own last line."""
    if skip_disk_full:
        for handler in logging.getLogger("rewind_vcs").handlers:
            handler.addFilter(_NoDiskFull())


def record(
    command: list[str] = typer.Argument(None, help="The command to run (the -- before it is optional)."),
    name: str = typer.Option(None, "--name", help="Name the session (rewind log, refs by name)."),
    upstream: list[str] = typer.Option(None, "--upstream", help="PROVIDER=URL: send that provider elsewhere."),
    record_host: list[str] = typer.Option(None, "--record-host", help="HOST or HOST=URL: also intercept and record this host (URL: send it there)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stderr's behalf to stdout."),
) -> None:
    """Run a command and record every LLM call it makes as a new session."""
    from rewind_vcs.proxy.record_run import record_run

    cmd = list(command or []) + list(trailing or [])
    repo = open_repo(create=True)
    log_to_stderr(skip_disk_full=True)
    result = record_run(
        repo, cmd, env=current_settings().environ, cwd=os.getcwd(), name=name,
        settings=settings_from(upstream, record_host, repo), out=sys.stdout.buffer, on_error=_error,
        on_start=lambda sid, port: info(f"rewind: recording session {sid} (proxy on 127.0.0.1:{port})"),
    )
    if as_json:
        print_json({"session": result.session_id, "steps": result.steps, "exit_code": result.exit_code})
    extra = f", {result.vetoed} vetoed by the pre-step hook" if result.vetoed else ""
    if result.disk_full:
        info(f"rewind: recording stopped, the disk is full: session {result.session_id} keeps "
             f"{result.steps} steps{extra} (incomplete), {result.dropped} later calls were not recorded; "
             f"exit {result.exit_code}")
        raise typer.Exit(result.exit_code or 1)
    info(f"rewind: recorded session {result.session_id}: {result.steps} steps{extra}, "
         f"exit {result.exit_code}  (rewind show {result.session_id})")
    raise typer.Exit(result.exit_code)


def replay(
    ref: str = typer.Argument(None, help="What to replay (default: HEAD, else latest)."),
    on_miss: str = typer.Option("error", "--on-miss", help="error | live: what a request no step matches does."),
    latency: str = typer.Option("none", "--latency", help="none | recorded | xF (recorded times F)."),
    from_step: int = typer.Option(None, "--from", help="Serve steps before N from the recording; N on goes live."),
    timeline: str = typer.Option(None, "--timeline", help="Name the new timeline (default fork-1, fork-2, ...)."),
    upstream: list[str] = typer.Option(None, "--upstream", help="PROVIDER=URL for calls that go live."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Run the recorded command of a session recorded "
                             "elsewhere (imported, fetched) without asking."),
) -> None:
    """Re-run the recorded command (or the one after --) against the recording: zero API calls."""
    from rewind_vcs.errors import ConfigError, RefError, UntrustedCommandError
    from rewind_vcs.proxy.replay_run import replay_run
    from rewind_vcs.proxy.replayer import Drift, Latency, Miss, OnMiss
    from rewind_vcs.store.refs import timeline_ref

    repo = open_repo()
    log_to_stderr()
    if ref is None:
        try:
            target = repo.resolve("HEAD")
        except RefError:
            target = repo.resolve("latest")
    else:
        target = repo.resolve(ref)
    try:
        miss_mode = OnMiss(on_miss)
    except ValueError:
        raise ConfigError(f"bad --on-miss '{on_miss}'", hint="use error or live") from None
    fork_at = None
    if from_step is not None:
        if from_step < 1:
            raise ConfigError("--from takes a step number from 1")
        fork_at = from_step - 1

    def on_event(event: object) -> None:
        if isinstance(event, Miss):
            info(f"{event.message()}")
        elif isinstance(event, Drift):
            what = "; ".join(str(d) for d in event.diffs[:3]) or "no semantic field"
            info(f"rewind: step {event.step} served from the recording, but the request drifted: "
                 f"{what}")

    def run(allow: bool) -> ReplayResult:
        return replay_run(
            repo, target, list(trailing or []) or None, env=current_settings().environ, latency=Latency.parse(latency),
            on_miss=miss_mode, fork_at=fork_at, timeline_name=timeline,
            settings=settings_from(upstream, None, repo), out=sys.stdout.buffer, on_event=on_event,
            on_error=_error, allow_recorded_command=allow,
        )

    if not trailing and any("REDACTED" in arg for arg in repo.session(target.session_id).info.command):
        info("rewind: the recorded command line held credentials, stored redacted; "
             "to run it with them, give the command after --")
    try:
        result = run(yes)
    except UntrustedCommandError as exc:
        if not _consent(exc):
            raise
        result = run(True)
    if result.new_timeline:
        repo.set_head(timeline_ref(result.session_id, result.new_timeline))
    stats, sv = result.stats, result.savings
    summary = {
        "session": result.session_id,
        "timeline": result.timeline,
        "served": len(stats.served),
        "misses": len(stats.misses),
        "drifted": len(stats.drifts),
        "live": stats.live,
        "new_timeline": result.new_timeline,
        "fork_point": result.fork_point,
        "new_steps": result.new_steps,
        "exit_code": result.exit_code,
        "output_identical": result.output_identical,
        "saved": {"steps": sv.steps, "tokens": sv.tokens, "cost_usd": round(sv.cost_usd, 6),
                  "seconds": round(sv.seconds, 3)},
    }
    if as_json:
        print_json(summary)
    else:
        _print_replay(result, summary)
    if stats.misses:
        raise typer.Exit(result.exit_code or 1)
    raise typer.Exit(result.exit_code)


def visible(text: str) -> str:
    """``text`` safe to print: control and bidirectional-override characters shown as escapes."""
    import unicodedata

    out = []
    for ch in text:
        if ch.isprintable() or ch == " ":
            if unicodedata.category(ch) == "Cf":  # format characters: RLO, LRI, ZWJ, ...
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else f"\\U{ord(ch):08x}")
    return "".join(out)


def _consent(exc: UntrustedCommandError) -> bool:
    """Show a foreign session's recorded command and ask on the terminal; False without one."""
    import shlex

    if not sys.stdin.isatty():
        return False
    where = f"{exc.origin} from {exc.source}" if exc.source else exc.origin
    err = sys.stderr
    print(f"rewind: session {exc.session_id} was not recorded here ({visible(where)}). "
          "Its recorded command is:", file=err)
    print(f"    {visible(shlex.join(exc.command)) or '(none)'}", file=err)
    print(f"  in directory: {visible(exc.cwd) or '(none)'}", file=err)
    err.write("Run it? [y/N] ")
    err.flush()
    answer = sys.stdin.readline()
    if answer.strip().lower() in ("y", "yes"):
        return True
    from rewind_vcs.errors import ConfigError

    raise ConfigError(f"not running the recorded command of session {exc.session_id}",
                      hint="give your own command after --")


def _print_replay(result: ReplayResult, summary: dict[str, Any]) -> None:
    from rewind_vcs.cli.common import money

    stats = result.stats
    info(f"rewind: replayed {result.session_id}/{result.timeline}: {summary['served']} steps served, "
         f"{summary['misses']} misses" + (f", {summary['drifted']} drifted" if stats.drifts else ""))
    if result.new_timeline:
        info(f"rewind: {result.new_steps} live steps recorded on timeline "
             f"{result.session_id}/{result.new_timeline} (forked at step {result.fork_point}); "
             "HEAD follows it")
    sv = result.savings
    info(f"rewind: saved {sv.steps} calls, {sv.tokens:,} tokens, {money(sv.cost_usd)}, {sv.seconds:.1f} s")
    if result.output_identical is True:
        info("rewind: output identical to the recording")
    elif result.output_identical is False:
        info("rewind: output differs from the recording:")
        if result.recorded_stdout is not None:
            import difflib

            from rewind_vcs.store.redact import redact_output

            old = result.recorded_stdout.decode(errors="replace").splitlines()
            # compared as stored (redacted): a key is neither a difference nor shown in the diff
            new = redact_output(result.stdout).decode(errors="replace").splitlines()
            for line in list(difflib.unified_diff(old, new, "recorded", "replayed", lineterm=""))[:60]:
                print(safe_text(line), file=sys.stderr)  # the recorded side may be anyone's


def proxy(
    port: int = typer.Option(8787, "--port", help="Port on 127.0.0.1 (0 picks a free one)."),
    name: str = typer.Option(None, "--name", help="Name of the sessions recorded."),
    upstream: list[str] = typer.Option(None, "--upstream", help="PROVIDER=URL: send that provider elsewhere."),
    record_host: list[str] = typer.Option(None, "--record-host", help="Also intercept and record this host."),
) -> None:
    """Run the recording proxy until Ctrl-C, for clients started elsewhere."""
    import signal
    import threading

    from rewind_vcs.proxy.lifecycle import ProxySession, RecordingHandler
    from rewind_vcs.proxy.recorder import Recorder
    from rewind_vcs.store.records import SessionInfo

    repo = open_repo(create=True)
    log_to_stderr()
    settings = settings_from(upstream, record_host, repo)
    recorder = Recorder(repo, SessionInfo(name=name, command=["rewind", "proxy"], cwd=os.getcwd()))
    handler = RecordingHandler(recorder, settings.pool(), settings.timeout, _error)
    with ProxySession(repo, handler, settings.routes(current_settings().environ), recorder=recorder, recording=handler,
                      port=port, on_error=_error, ca_dir=settings.ca_dir) as running:
        env = running.child_env({})
        info(f"rewind: proxy listening on 127.0.0.1:{running.port}; export these in the agent's shell:")
        for key in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "HTTPS_PROXY",
                    "NO_PROXY", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
            print(f"export {key}={safe_text(env[key])}", flush=True)
        info("rewind: each X-Rewind-Session header value is its own session; Ctrl-C finishes and packs")
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        try:
            while not done.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        writers = running.finish()
    for w in writers:
        info(f"rewind: recorded session {w.id}: {w.steps} steps")
    if recorder.disk_full:
        info(f"rewind: recording stopped when the disk filled up; {recorder.dropped} later calls were not "
             "recorded (the sessions above are incomplete)")
    if not writers:
        info("rewind: no calls were made; nothing recorded")
