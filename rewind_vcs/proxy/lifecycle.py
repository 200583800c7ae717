"""One proxy run's lifecycle, shared by ``record``, ``replay`` and ``proxy``: start, flush, stop.

:class:`ProxySession` starts the server on 127.0.0.1 with the repository's
CA and, when it records, an :class:`IdleFlusher`; it ends in exactly one of
two ways: :meth:`ProxySession.finish` (stop the server, stop the flusher,
commit what is left and close the sessions) or leaving the ``with`` block
without finishing (an error, Ctrl-C: stop, commit what is journalled, leave
the sessions ``incomplete``). ``record_run``, ``replay_run`` and the
``rewind proxy`` command are this plus what they run.

:class:`RecordingHandler` is the live handler that journals each finished
exchange into a :class:`~rewind_vcs.proxy.recorder.Recorder`, its response
body streamed through :meth:`Recorder.spool
<rewind_vcs.proxy.recorder.Recorder.spool>`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from rewind_vcs.proxy.clock import SYSTEM_CLOCK, Clock
from rewind_vcs.proxy.env import child_environment, upstreams_from_environment
from rewind_vcs.proxy.handler import ForwardHandler, Handler, ProxyRequest, ProxyResponse
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.server import ProxyServer
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool, upstream_ssl_context
from rewind_vcs.store.records import EndInfo, Exchange

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.writer import SessionWriter

log = logging.getLogger(__name__)

#: Seconds without a new exchange after which journalled exchanges are committed.
IDLE_FLUSH_SECONDS = 0.5
#: How often the idle flusher looks.
FLUSH_POLL_SECONDS = 0.1


@dataclass
class ProxySettings:
    """Where requests go: provider upstream overrides, extra hosts to record, the upstream CA."""

    upstreams: dict[str, str] = field(default_factory=dict)
    record_hosts: dict[str, str | None] = field(default_factory=dict)  # host -> upstream override
    upstream_ca: str | None = None
    timeout: float = 600.0
    ca_dir: Path | None = None  # the per-user CA (the CLI passes it); None: an in-memory CA for this run

    def routes(self, env: Mapping[str, str]) -> Routes:
        # A base URL the user's environment already sets (a gateway, a local model
        # server) becomes that provider's upstream, unless overridden explicitly.
        merged = {**upstreams_from_environment(env), **self.upstreams}
        return Routes(merged, self.record_hosts)

    def pool(self) -> UpstreamPool:
        return UpstreamPool(upstream_ssl_context(self.upstream_ca), read_timeout=self.timeout)


class RecordingHandler:
    """Forwards live and journals every finished exchange into a :class:`Recorder`.

    ``on_error`` is passed on to the forwarder (its reports of relay failures).
    """

    def __init__(self, recorder: Recorder, pool: UpstreamPool, timeout: float,
                 on_error: Callable[[str], None] | None = None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.recorder = recorder
        self.pool = pool
        self.timeout = timeout
        self.on_error = on_error
        self.clock = clock
        self.last_activity = clock.monotonic()

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        self.last_activity = self.clock.monotonic()
        spool = self.recorder.spool()

        def on_exchange(exchange: Exchange) -> None:
            self.last_activity = self.clock.monotonic()
            self.recorder.record(exchange, request.provider_hint, request.session_tag, spool)

        forward = ForwardHandler(self.pool, on_exchange, self.timeout, on_error=self.on_error, body_sink=spool)
        return await forward.handle(request)

    async def aclose(self) -> None:
        await self.pool.aclose()


class IdleFlusher:
    """Commits journalled exchanges whenever the proxy has been quiet for :data:`IDLE_FLUSH_SECONDS`.

    :meth:`tick` is one look (what the thread does every
    :data:`FLUSH_POLL_SECONDS`); tests call it with a fake clock.
    """

    def __init__(self, recorder: Recorder, handler: RecordingHandler, *, clock: Clock | None = None,
                 idle: float = IDLE_FLUSH_SECONDS) -> None:
        self.recorder = recorder
        self.handler = handler
        self.clock = clock or handler.clock
        self.idle = idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rewind-flusher", daemon=True)

    def start(self) -> IdleFlusher:
        self._thread.start()
        return self

    def tick(self) -> int:
        """Commit what is pending if the proxy is quiet; returns the steps written."""
        if not (self.quiet() and self.recorder.pending):
            return 0
        try:
            return self.recorder.flush(should_stop=lambda: not self.quiet())
        except Exception:  # the journal keeps the exchanges: report, and try again later
            log.exception("committing steps failed (they stay in the journal)")
            return 0

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_POLL_SECONDS):
            self.tick()

    def quiet(self) -> bool:
        return self.clock.monotonic() - self.handler.last_activity >= self.idle

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


class ProxySession:
    """The proxy for one run: ``with ProxySession(...) as proxy: ...; proxy.finish(end)``.

    ``handler`` answers requests; ``recorder`` and ``recording`` (the
    :class:`RecordingHandler` feeding it, which reports activity) are given
    when the run records, live or on a fork.
    """

    def __init__(
        self,
        repo: Repo,
        handler: Handler,
        routes: Routes,
        *,
        recorder: Recorder | None = None,
        recording: RecordingHandler | None = None,
        port: int = 0,
        on_error: Callable[[str], None] | None = None,
        ca_dir: Path | None = None,
    ) -> None:
        self.repo = repo
        self.ca_dir = ca_dir
        self.handler = handler
        self.routes = routes
        self.recorder = recorder
        self.recording = recording
        self.requested_port = port
        self.on_error = on_error
        self.port = 0
        self.bundle = Path()
        self._server: ProxyServer | None = None
        self._flusher: IdleFlusher | None = None
        self._done = False

    def __enter__(self) -> ProxySession:
        try:
            # The CA lives per user (``ca_dir``), never in the repository; without one it
            # exists only in memory for this run. Only the bundle (public certificates) is
            # written here, named by the CA's fingerprint so concurrent runs never clash.
            ca = (CertificateAuthority.load_or_create(self.ca_dir) if self.ca_dir is not None
                  else CertificateAuthority.generate())
            self.bundle = ca.write_bundle(self.repo.path / "ca" / f"bundle-{ca.fingerprint[:16]}.pem")
            self._server = ProxyServer(self.handler, self.routes, ca, port=self.requested_port,
                                       on_error=self.on_error)
            self.port = self._server.start_in_thread()  # a busy port is a ConfigError
        except BaseException:
            self._done = True
            if self.recorder is not None:
                self.recorder.abandon()
            raise
        if self.recorder is not None and self.recording is not None:
            self._flusher = IdleFlusher(self.recorder, self.recording).start()
        return self

    def child_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` plus what sends a client's API calls through this proxy."""
        return child_environment(env, self.port, str(self.bundle))

    def stop(self) -> None:
        """Stop serving and flushing (idempotent); the sessions stay open."""
        if self._server is not None:
            self._server.stop()
            self._server = None
            if self.ca_dir is None:
                self.bundle.unlink(missing_ok=True)  # it names a CA that dies with this run
        if self._flusher is not None:
            self._flusher.stop()
            self._flusher = None

    def finish(self, end: EndInfo | None = None) -> list[SessionWriter]:
        """Stop, commit what is left and close the sessions (``end`` on the untagged one)."""
        self.stop()
        self._done = True
        return self.recorder.finish(end) if self.recorder is not None else []

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
        if not self._done:
            self._done = True
            if self.recorder is not None:
                self.recorder.abandon()


@dataclass
class RunningProxy:
    """A started :class:`ProxySession` as older callers knew it (``start_proxy``)."""

    session: ProxySession

    @property
    def port(self) -> int:
        return self.session.port

    @property
    def bundle(self) -> Path:
        return self.session.bundle

    def child_env(self, env: Mapping[str, str]) -> dict[str, str]:
        return self.session.child_env(env)

    def stop(self) -> None:
        self.session.stop()


def start_proxy(repo: Repo, handler: Handler, routes: Routes, *, port: int = 0,
                on_error: Callable[[str], None] | None = None, ca_dir: Path | None = None) -> RunningProxy:
    """The proxy on 127.0.0.1 with the CA in ``ca_dir``, no recorder attached (tests, benchmarks)."""
    return RunningProxy(ProxySession(repo, handler, routes, port=port, on_error=on_error,
                                     ca_dir=ca_dir).__enter__())
