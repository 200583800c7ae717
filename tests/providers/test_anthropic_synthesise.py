"""Synthesised Anthropic responses and errors, parsed back by the real anthropic SDK."""

from __future__ import annotations

import anthropic
import pytest

from rewind_vcs.providers.anthropic import AnthropicProvider
from rewind_vcs.providers.base import Normalised, ToolCall
from rewind_vcs.store.records import Usage
from tests.providers.builders import exchange, request
from tests.providers.wire_server import WireServer

P = AnthropicProvider()
MODEL = "claude-haiku-4-5-20251001"
ASK = {
    "model": MODEL,
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Weather in SF?"}],
}


def _view(
    text: str = "", calls: list[ToolCall] | None = None, finish: str | None = None
) -> Normalised:
    return Normalised(
        provider="anthropic",
        endpoint="messages",
        model=MODEL,
        output_text=text,
        output_tool_calls=calls or [],
        usage=Usage(input_tokens=310, output_tokens=45),
        finish_reason=finish,
    )


@pytest.fixture
def client(wire: WireServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=wire.url, api_key="sk-ant-test", max_retries=2)


def _final(client: anthropic.Anthropic, stream: bool):
    if not stream:
        return client.messages.create(**ASK)
    with client.messages.stream(**ASK) as s:
        texts = list(s.text_stream)
        message = s.get_final_message()
    assert "".join(texts) == "".join(b.text for b in message.content if b.type == "text")
    return message


@pytest.mark.parametrize("stream", [False, True])
def test_text_and_tool_use(wire: WireServer, client: anthropic.Anthropic, stream: bool) -> None:
    calls = [
        ToolCall("get_weather", {"location": "San Francisco, CA", "unit": "celsius"}, "toolu_01A")
    ]
    n = _view("Let me check the weather for you.", calls)
    wire.respond(P.synthesise(n, stream=stream))
    message = _final(client, stream)
    assert message.model == MODEL
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == n.output_text
    assert (message.content[1].id, message.content[1].name, message.content[1].input) == (
        "toolu_01A",
        "get_weather",
        {"location": "San Francisco, CA", "unit": "celsius"},
    )
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (310, 45)
    back = P.normalise(
        exchange(
            request("/v1/messages", ASK, host="api.anthropic.com"), P.synthesise(n, stream=stream)
        )
    )
    assert (back.output_text, back.usage, back.finish_reason) == (
        n.output_text,
        n.usage,
        "tool_use",
    )
    assert [(c.name, c.arguments, c.id) for c in back.output_tool_calls] == [
        (c.name, c.arguments, c.id) for c in calls
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_finish_reasons_from_other_providers_map_over(
    wire: WireServer, client: anthropic.Anthropic, stream: bool
) -> None:
    wire.respond(P.synthesise(_view("cut", finish="length"), stream=stream))
    assert _final(client, stream).stop_reason == "max_tokens"
    wire.respond(P.synthesise(_view("done", finish="stop_sequence"), stream=stream))
    assert _final(client, stream).stop_reason == "stop_sequence"  # native reasons kept


@pytest.mark.parametrize(
    ("status", "exception", "kind"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
def test_error_response(
    wire: WireServer, client: anthropic.Anthropic, status: int, exception: type, kind: str
) -> None:
    message = "rewind: no recorded step matches this request"
    wire.respond(P.error_response(status, message))
    with pytest.raises(exception) as caught:
        client.messages.create(**ASK)
    assert caught.value.status_code == status
    assert caught.value.body == {"type": "error", "error": {"type": kind, "message": message}}
    assert len(wire.requests) == 1  # x-should-retry: false, even with max_retries=2


def test_error_response_on_a_stream(wire: WireServer, client: anthropic.Anthropic) -> None:
    wire.respond(P.error_response(404, "no recording"))
    with pytest.raises(anthropic.NotFoundError, match="no recording"):
        with client.messages.stream(**ASK) as s:
            s.get_final_message()
