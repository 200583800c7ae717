"""Redaction and matching agree: a key in the URL or body never makes replay miss, nor shows in a miss.

In-process: the recorder's redaction writes real steps to a real repository,
and the real :class:`ReplayHandler` answers a :class:`ProxyRequest` (no socket).
"""

from __future__ import annotations

import asyncio
import json
import time

from rewind_vcs.proxy.handler import ProxyRequest, ProxyResponse
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.replayer import ReplayHandler
from rewind_vcs.store.records import Exchange, Request, Response, SessionInfo
from rewind_vcs.store.repo import Repo
from tests.security.conftest import PLAIN_SECRET, SAMPLES

KEY = SAMPLES["google"]


def _tool_exchange(path: str, body: bytes = b"") -> Exchange:
    answer = json.dumps({"result": "ev sales grew"}).encode()
    return Exchange(
        request=Request("GET" if not body else "POST", "http", "search.example", path,
                        [("accept", "application/json")], body),
        response=Response(200, "OK", [("content-type", "application/json")], answer, [(0.01, len(answer))]),
        started_at=time.time(), duration=0.01,
    )


def _record(repo: Repo, *exchanges: Exchange) -> str:
    recorder = Recorder(repo, SessionInfo(name="tool", command=["agent"]))
    for ex in exchanges:
        recorder.record(ex)
    (writer,) = recorder.finish()
    return writer.id


def _ask(handler: ReplayHandler, path: str, body: bytes = b"") -> tuple[ProxyResponse, bytes]:
    request = ProxyRequest("GET" if not body else "POST", "http", "search.example", path,
                           [("accept", "application/json")], body, None, "http://search.example", None, None,
                           time.time(), time.perf_counter())

    async def go() -> tuple[ProxyResponse, bytes]:
        resp = await handler.handle(request)
        return resp, b"".join([piece async for piece in resp.body])

    return asyncio.run(go())


def test_a_request_whose_url_held_a_key_matches_its_recording(tmp_path):
    repo = Repo.init(tmp_path)
    path = f"/search?q=ev+sales&key={KEY}"
    body = json.dumps({"q": "ev", "api_key": PLAIN_SECRET}).encode()
    _record(repo, _tool_exchange(path), _tool_exchange("/lookup", body))
    steps = repo.timeline("tool").steps
    assert steps[0].request.path == "/search?q=ev+sales"  # stored redacted
    handler = ReplayHandler(steps)
    resp, data = _ask(handler, path)
    assert resp.status == 200 and b"ev sales grew" in data
    resp, data = _ask(handler, "/lookup", body)  # a key field in the body: matched on the redacted form too
    assert resp.status == 200
    assert handler.stats.served == [1, 2] and not handler.stats.misses


def test_a_miss_message_never_prints_the_live_requests_secret(tmp_path):
    repo = Repo.init(tmp_path)
    _record(repo, _tool_exchange("/search?q=ev+sales", json.dumps({"q": "ev"}).encode()))
    handler = ReplayHandler(repo.timeline("tool").steps)
    live_body = json.dumps({"q": f"other {SAMPLES['openai']}", "password": PLAIN_SECRET}).encode()
    resp, data = _ask(handler, f"/search?q=ev+sales&token={PLAIN_SECRET}&k={KEY}", live_body)
    assert resp.status == 400
    (miss,) = handler.stats.misses
    shown = miss.message() + data.decode() + repr(miss)
    for secret in (PLAIN_SECRET, KEY, SAMPLES["openai"]):
        assert secret not in shown
    assert "closest is step 1" in miss.message()


def test_replay_uses_the_repositorys_extra_redact_names(tmp_path):
    repo = Repo.init(tmp_path)
    repo.git.config["rewind.redact"] = "session_key"
    _record(repo, _tool_exchange(f"/s?q=1&session_key={PLAIN_SECRET}"))
    steps = repo.timeline("tool").steps
    assert PLAIN_SECRET not in steps[0].request.path
    handler = ReplayHandler(steps, redact=["session_key"])
    resp, _ = _ask(handler, f"/s?q=1&session_key={PLAIN_SECRET}")
    assert resp.status == 200
