"""Upstream and client faults recorded through a real ``rewind record``, then replayed with no upstream.

Each run meets one fault and then makes a normal call, so every test also
shows that the proxy keeps serving within the same run. The agents print the
exception class the official SDK raised; a replay must print the same bytes.

Timeouts, and which exception the SDK raises for them:

- ``REWIND_UPSTREAM_TIMEOUT`` fires first (the upstream sends nothing for that
  long): the proxy records a ``timeout`` step with status 0 and drops the
  client's connection without a response, as a network failure looks. httpx
  then sees "server disconnected without sending a response"
  (``RemoteProtocolError``), which the openai SDK maps to
  ``APIConnectionError``, not ``APITimeoutError``: the SDK's own clock never ran out.
- the SDK's own timeout fires first: the SDK raises ``APITimeoutError`` and hangs
  up; the proxy records a ``client_disconnected`` step with status 0.

429, 500 and a reset before the response for OpenAI are in
tests/e2e/test_record_replay.py; here are the ones it does not cover.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rewind_vcs.store.records import StepStatus, TransportError
from rewind_vcs.store.repo import Repo
from rewind_vcs.testing.fake_llm import FakeLLM
from tests.faults.conftest import agent, offline_env, replay_summary, run_rewind, upstream_env


@dataclass
class Recorded:
    workdir: Path
    stdout: str
    stderr: str

    def steps(self):
        return Repo.open(self.workdir).timeline("run").steps

    def replay(self):
        rep = run_rewind(["replay", "run", "--json"], self.workdir, offline_env(), timeout=60)
        assert rep.returncode == 0, rep.stderr
        out, summary = replay_summary(rep.stdout)
        return out, summary, rep.stderr


def record(tmp_path_factory, mode: str, *, upstream_timeout: float = 30.0, slow_delay: float = 0.2) -> Recorded:
    workdir = tmp_path_factory.mktemp(mode)
    Repo.init(workdir)
    with FakeLLM(slow_delay=slow_delay, cut_after=3) as fake:
        env = {**upstream_env(fake), "REWIND_UPSTREAM_TIMEOUT": str(upstream_timeout)}
        rec = run_rewind(["record", "--name", "run", "--", sys.executable, agent("faults_agent.py"), mode],
                         workdir, env, timeout=60)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    return Recorded(workdir, rec.stdout, rec.stderr)


def assert_next_call_served(recorded: Recorded, n: int) -> None:
    assert "next: > next call" in recorded.stdout
    step = recorded.steps()[n - 1]
    assert step.info.status is StepStatus.OK and step.info.http_status == 200
    assert step.response.error is None


# -- the client hangs up mid-stream ----------------------------------------------------------


def test_a_client_hanging_up_mid_stream_is_a_step_with_the_part_it_got_and_replays(tmp_path_factory):
    hangup = record(tmp_path_factory, "hangup")
    assert "read before hanging up: 'gpt-4o-mini answers,'" in hangup.stdout
    first, _ = hangup.steps()
    assert first.info.status is StepStatus.ERROR and first.info.http_status == 200
    assert first.response.error is TransportError.CLIENT_DISCONNECTED
    assert first.info.stream
    body = first.response.body
    assert b'"content":" answers,"' in body and b"[DONE]" not in body  # the part sent before the hang-up
    assert sum(n for _, n in first.response.chunks) == len(body)
    # Noticed at once, not when the upstream finished its 25-odd pieces 0.2 s apart.
    assert first.info.latency_ms < 3000
    assert_next_call_served(hangup, 2)
    assert "handler failed" not in hangup.stderr

    out, summary, _ = hangup.replay()
    assert out == hangup.stdout
    assert summary["served"] == 2 and summary["misses"] == 0 and summary["output_identical"] is True


# -- the upstream never answers: rewind's own timeout -----------------------------------------


def test_upstream_timeout_is_a_timeout_step_the_sdk_raises_api_connection_error_and_replays(tmp_path_factory):
    recorded = record(tmp_path_factory, "proxy-timeout", upstream_timeout=0.5)
    assert "hang: openai APIConnectionError None" in recorded.stdout
    first, _ = recorded.steps()
    assert first.info.status is StepStatus.ERROR
    assert first.response.error is TransportError.TIMEOUT and first.response.status == 0
    assert first.response.body == b""
    assert 500 <= first.info.latency_ms < 5000  # REWIND_UPSTREAM_TIMEOUT=0.5, read by the CLI
    assert "timeout" in (first.info.error or "")
    assert_next_call_served(recorded, 2)

    out, summary, _ = recorded.replay()
    assert out == recorded.stdout
    assert summary["served"] == 2 and summary["output_identical"] is True


# -- the upstream never answers: the SDK's own timeout -------------------------------------------


@pytest.fixture(scope="module")
def client_timeout(tmp_path_factory) -> Recorded:
    return record(tmp_path_factory, "client-timeout", upstream_timeout=30)


def test_sdk_timeout_is_a_client_disconnected_step_and_the_sdk_raises_api_timeout_error(client_timeout):
    assert "hang: openai APITimeoutError None" in client_timeout.stdout
    first, _ = client_timeout.steps()
    assert first.info.status is StepStatus.ERROR
    assert first.response.error is TransportError.CLIENT_DISCONNECTED and first.response.status == 0
    assert first.info.latency_ms < 5000  # the SDK's 0.5 s, not rewind's 30 s
    assert_next_call_served(client_timeout, 2)


def test_a_client_giving_up_on_a_silent_upstream_is_not_reported_as_a_proxy_failure(client_timeout):
    assert "handler failed" not in client_timeout.stderr
    assert "_ClientGone" not in client_timeout.stderr


def test_sdk_timeout_replays_as_the_same_exception(client_timeout):
    out, summary, _ = client_timeout.replay()
    assert "hang: openai APITimeoutError None" in out
    assert out == client_timeout.stdout and summary["output_identical"] is True


# -- the upstream drops the connection in the middle of a stream ------------------------------------


def test_a_stream_cut_by_the_upstream_is_a_reset_step_and_replays_cut_at_the_same_byte(tmp_path_factory):
    cut = record(tmp_path_factory, "cut", slow_delay=0.0)
    assert "cut: openai APIConnectionError None" in cut.stdout
    assert "read before the cut: 'gpt-4o-mini answers,'" in cut.stdout
    first, _ = cut.steps()
    assert first.info.status is StepStatus.ERROR and first.info.http_status == 200
    assert first.response.error is TransportError.CONNECTION_RESET
    assert first.response.body.count(b"data: ") == 3 and b"[DONE]" not in first.response.body
    assert_next_call_served(cut, 2)

    out, summary, _ = cut.replay()
    assert out == cut.stdout
    assert summary["served"] == 2 and summary["output_identical"] is True


# -- Anthropic and Gemini failures ------------------------------------------------------------------


def test_anthropic_and_gemini_failures_are_steps_and_replay_as_the_same_exceptions(tmp_path_factory):
    providers = record(tmp_path_factory, "providers")
    lines = providers.stdout.splitlines()
    assert lines[:5] == [
        "anthropic 429: anthropic RateLimitError 429",
        "anthropic 500: anthropic InternalServerError 500",
        "anthropic reset: anthropic APIConnectionError None",
        "gemini 429: ClientError 429 RESOURCE_EXHAUSTED",
        "gemini 500: ServerError 500 INTERNAL",
    ]
    steps = providers.steps()
    assert [(s.info.provider, s.info.status.value, s.info.http_status) for s in steps] == [
        ("anthropic", "error", 429), ("anthropic", "error", 500), ("anthropic", "error", 0),
        ("gemini", "error", 429), ("gemini", "error", 500), ("gemini", "ok", 200), ("anthropic", "ok", 200)]
    assert steps[2].response.error is TransportError.CONNECTION_RESET
    assert all(s.info.error for s in steps[:5])

    out, summary, _ = providers.replay()
    assert out == providers.stdout
    assert summary["served"] == 7 and summary["misses"] == 0
