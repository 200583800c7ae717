"""The clock seam: replay pacing and the idle flusher driven by a fake clock (no sockets, no waiting).

These replace wall-clock comparisons (``t_paced > t_fast``) that a loaded
machine can break: the fake clock records every wait the code asks for.
"""

from __future__ import annotations

import asyncio

import pytest

from rewind_vcs.proxy.clock import FakeClock, SystemClock
from rewind_vcs.proxy.handler import ProxyRequest
from rewind_vcs.proxy.lifecycle import IdleFlusher, ProxySettings, RecordingHandler
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.replayer import Latency, ReplayHandler
from rewind_vcs.store.records import EndInfo, SessionInfo
from tests import factories

PIECES = [b"data: one\n\n", b"data: two\n\n", b"data: three\n\n", b"data: [DONE]\n\n"]
TIMES = [0.2, 0.5, 1.1, 1.5]  # seconds after the request, as recorded


def _recorded_stream(repo):
    ex = factories.exchange("pace me")
    ex.response.body = b"".join(PIECES)
    ex.response.headers = [("content-type", "text/event-stream")]
    ex.response.chunks = [(t, len(p)) for t, p in zip(TIMES, PIECES, strict=True)]
    writer = repo.create_session(name="paced", command=["agent"])
    writer.append(ex, factories.info())
    writer.finish(EndInfo(exit_code=0))
    return ex.request, repo.timeline("paced").steps


def _request(req) -> ProxyRequest:
    return ProxyRequest(req.method, req.scheme, req.host, req.path, req.headers, req.body, "openai",
                        "https://api.openai.com", None, None, 0.0, 0.0)


def _replay(steps, req, latency: Latency, clock: FakeClock) -> tuple[list[bytes], float]:
    handler = ReplayHandler(steps, latency=latency, clock=clock)

    async def go() -> list[bytes]:
        response = await handler.handle(_request(req))
        return [piece async for piece in response.body]

    start = clock.monotonic()
    pieces = asyncio.run(go())
    assert handler.stats.served == [1]
    return pieces, clock.monotonic() - start


@pytest.mark.parametrize("latency, elapsed", [("recorded", 1.5), ("x2", 3.0), ("x0.5", 0.75)])
def test_recorded_latency_waits_the_recorded_times(repo, latency, elapsed):
    req, steps = _recorded_stream(repo)
    clock = FakeClock()
    pieces, took = _replay(steps, req, Latency.parse(latency), clock)
    assert pieces == PIECES  # as recorded, never re-split
    assert took == pytest.approx(elapsed)
    factor = Latency.parse(latency).factor
    # each piece leaves at its recorded time: the waits are the gaps between them
    gaps = [t - s for s, t in zip([0.0, *TIMES], TIMES, strict=False)]
    assert [round(w, 6) for w in clock.sleeps if w > 1e-9] == [round(g * factor, 6) for g in gaps]


def test_no_latency_never_waits(repo):
    req, steps = _recorded_stream(repo)
    clock = FakeClock()
    pieces, took = _replay(steps, req, Latency.parse("none"), clock)
    assert pieces == PIECES and took == 0 and clock.sleeps == []


def test_the_idle_flusher_commits_only_after_the_quiet_period(repo):
    clock = FakeClock()
    rec = Recorder(repo, SessionInfo(name="idle"), hook=None)
    handler = RecordingHandler(rec, ProxySettings().pool(), 5.0, clock=clock)
    flusher = IdleFlusher(rec, handler)  # takes the handler's clock; not started: ticked by hand
    rec.record(factories.exchange("a"))
    handler.last_activity = clock.monotonic()
    assert flusher.tick() == 0 and rec.pending == 1  # traffic just now: not quiet
    clock.advance(0.49)
    assert flusher.tick() == 0
    clock.advance(0.02)
    assert flusher.tick() == 1 and rec.pending == 0
    rec.finish(EndInfo(exit_code=0))
    assert len(repo.timeline("idle").steps) == 1


def test_a_failing_flush_is_logged_and_kept(repo, caplog):
    clock = FakeClock()
    rec = Recorder(repo, SessionInfo(name="hookfail"), hook=None)
    handler = RecordingHandler(rec, ProxySettings().pool(), 5.0, clock=clock)
    flusher = IdleFlusher(rec, handler)
    rec.record(factories.exchange("a"))
    rec.writers()[0].finished = True  # the writer refuses appends: commit fails with a RewindError
    clock.advance(1.0)
    assert flusher.tick() == 0
    assert rec.pending == 1
    assert any("committing steps failed" in r.getMessage() for r in caplog.records)
    rec.writers()[0].finished = False
    rec.finish(EndInfo(exit_code=0))


def test_the_system_clock_is_a_clock():
    clock = SystemClock()
    a = clock.monotonic()
    clock.sleep(0)
    assert clock.monotonic() >= a and clock.time() > 1.7e9
