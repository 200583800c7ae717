"""ProxySession: one start/flush/stop lifecycle for record, replay and proxy."""

from __future__ import annotations

import sys

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.lifecycle import ProxySession, ProxySettings, RecordingHandler
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.store.records import EndInfo, SessionInfo, SessionStatus
from rewind_vcs.store.writer import SessionWriter
from tests import factories

ROOT = str(__import__("pathlib").Path(__file__).resolve().parents[2])


def _session(repo):
    info = SessionInfo(name="life", command=["agent"])
    writer = SessionWriter.create(repo, info)
    recorder = Recorder(repo, info, writer=writer, hook=None)
    settings = ProxySettings()
    handler = RecordingHandler(recorder, settings.pool(), settings.timeout)
    return ProxySession(repo, handler, settings.routes({}), recorder=recorder, recording=handler), recorder


def test_finish_commits_and_closes_the_session(repo):
    proxy, recorder = _session(repo)
    with proxy:
        assert proxy.port > 0 and proxy.bundle.is_file()
        env = proxy.child_env({"PATH": "/bin"})
        assert env["OPENAI_BASE_URL"] == f"http://127.0.0.1:{proxy.port}/openai/v1"
        recorder.record(factories.exchange("one"))
        (writer,) = proxy.finish(EndInfo(exit_code=0))
    assert writer.steps == 1
    assert repo.sessions(use_cache=False)[0].status is SessionStatus.OK
    assert list((repo.path / "journal").iterdir()) == []


def test_leaving_without_finish_keeps_the_steps_and_leaves_the_session_incomplete(repo):
    proxy, recorder = _session(repo)
    with pytest.raises(KeyboardInterrupt), proxy:
        recorder.record(factories.exchange("one"))
        raise KeyboardInterrupt
    summary = repo.sessions(use_cache=False)[0]
    assert summary.status is SessionStatus.INCOMPLETE and summary.steps == 1


def test_a_busy_port_releases_the_session(repo):
    import socket

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        info = SessionInfo(name="busy")
        writer = SessionWriter.create(repo, info)
        recorder = Recorder(repo, info, writer=writer, hook=None)
        handler = RecordingHandler(recorder, ProxySettings().pool(), 5.0)
        proxy = ProxySession(repo, handler, ProxySettings().routes({}), recorder=recorder, recording=handler,
                             port=busy.getsockname()[1])
        with pytest.raises(ConfigError, match="in use|busy|address"), proxy:
            pass
    finally:
        busy.close()
    # the lease was released: another writer may resume the session
    SessionWriter.resume(repo, writer.id).close()


def test_a_40_mb_response_is_recorded_in_under_1_5x_its_size(tmp_path):
    """The memory bound, measured on the real CLI (benchmarks/bench_record_memory.py does 200 MB)."""
    sys.path.insert(0, ROOT)
    from benchmarks.bench_record_memory import record

    base, big = tmp_path / "base", tmp_path / "big"
    base.mkdir()
    big.mkdir()
    base_peak, _, _, _ = record(base, 10_000)
    size = 40_000_000
    peak, got, _, _ = record(big, size)
    assert got == size
    assert (peak - base_peak) * 1024 / size < 1.5
