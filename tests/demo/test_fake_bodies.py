"""The fake's bodies are the providers' own: every shape it sends reads back through
``providers.normalise`` to the reply it meant, with the usage it counted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rewind_vcs.providers import normalise
from rewind_vcs.store.records import Exchange, Request, Response
from rewind_vcs.testing import FakeLLM
from rewind_vcs.testing.scripts import answer_text

QUESTION = "how far is the moon from the earth today"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]}
CASES: list[tuple[str, dict[str, Any]]] = [
    ("/v1/chat/completions", CHAT),
    ("/v1/chat/completions", {**CHAT, "stream": True}),
    ("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": QUESTION}),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": QUESTION, "stream": True}),
    ("/v1/messages", {**CHAT, "model": "claude-haiku-4-5", "max_tokens": 64}),
    ("/v1/messages", {**CHAT, "model": "claude-haiku-4-5", "max_tokens": 64, "stream": True}),
    (
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {"contents": [{"parts": [{"text": QUESTION}]}]},
    ),
    (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [{"parts": [{"text": QUESTION}]}]},
    ),
    (
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        {"contents": [{"parts": [{"text": QUESTION}]}]},
    ),
]


def _exchange(fake: FakeLLM, path: str, body: dict[str, Any]) -> Exchange:
    with httpx.Client() as client:
        reply = client.post(fake.url + path, json=body)
    request = Request("POST", "http", "127.0.0.1", path, [], reply.request.content)
    headers = list(reply.headers.items())
    response = Response(
        reply.status_code, reply.reason_phrase, headers, reply.content, [(0.1, len(reply.content))]
    )
    return Exchange(request=request, response=response, started_at=0.0, duration=0.1)


@pytest.mark.parametrize(
    ("path", "body"), CASES, ids=[f"{p.split('/')[-1]}-{sorted(b.keys())}" for p, b in CASES]
)
def test_every_body_reads_back_to_the_reply_and_its_usage(
    fake: FakeLLM, path: str, body: dict[str, Any]
) -> None:
    view = normalise(_exchange(fake, path, body))
    model = body.get("model") or "gemini-2.5-flash"
    assert view.output_text == answer_text(model, QUESTION)
    assert view.usage.input_tokens == 10  # "how far is ... today": 40 characters
    assert view.usage.output_tokens > 0
    assert view.finish_reason in ("stop", "end_turn", "STOP", "completed")


def test_a_stream_is_sent_one_event_a_chunk(fake: FakeLLM) -> None:
    fake.chunk_delay = 0.0
    ex = _exchange(fake, "/v1/chat/completions", {**CHAT, "stream": True})
    events = [e for e in ex.response.body.split(b"\n\n") if e]
    words = len(answer_text("gpt-4o-mini", QUESTION).split())
    assert len(events) == words + 3  # the role chunk, a word each, the finish chunk, [DONE]
