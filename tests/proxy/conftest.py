"""Fixtures for the proxy tests: a fake upstream, a CA, and a running proxy that collects exchanges."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rewind_vcs.proxy.handler import ForwardHandler
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.server import ProxyServer
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool
from rewind_vcs.store.records import Exchange

from .fake_upstream import FakeUpstream


@dataclass
class RunningProxy:
    server: ProxyServer
    pool: UpstreamPool
    exchanges: list[Exchange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    recorded_at: list[float] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    def record(self, exchange: Exchange) -> None:
        with self._cond:
            self.recorded_at.append(time.perf_counter())
            self.exchanges.append(exchange)
            self._cond.notify_all()

    def wait_exchanges(self, n: int, timeout: float = 5.0) -> list[Exchange]:
        """The first ``n`` exchanges (on_exchange runs after the client got its last byte)."""
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.exchanges) >= n, timeout), (
                f"expected {n} exchanges, got {len(self.exchanges)}; errors: {self.errors}"
            )
            return list(self.exchanges[:n])


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    upstream = FakeUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path / "ca")


@pytest.fixture
def bundle(ca: CertificateAuthority, tmp_path: Path) -> str:
    """A CA bundle with only rewind's CA (the tests talk to nothing else over TLS)."""
    return str(ca.write_bundle(tmp_path / "bundle.pem", sources=[]))


@pytest.fixture
def make_proxy() -> Iterator[Callable[..., RunningProxy]]:
    started: list[RunningProxy] = []

    def make(
        routes: Routes,
        ca: CertificateAuthority | None = None,
        *,
        intercept_hosts: set[str] | None = None,
        timeout: float = 5.0,
        pool: UpstreamPool | None = None,
        **server_options: object,
    ) -> RunningProxy:
        pool = pool or UpstreamPool(connect_timeout=2.0)
        running = RunningProxy(server=None, pool=pool)  # type: ignore[arg-type]
        handler = ForwardHandler(pool, running.record, timeout, on_error=running.errors.append)
        running.server = ProxyServer(
            handler,
            routes,
            ca,
            intercept_hosts,
            on_error=running.errors.append,
            **server_options,  # type: ignore[arg-type]
        )
        running.server.start_in_thread()
        started.append(running)
        return running

    yield make
    for running in started:
        running.server.stop()
