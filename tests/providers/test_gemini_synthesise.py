"""Synthesised Gemini responses and errors, parsed back by the real google-genai SDK."""

from __future__ import annotations

import pytest
from google import genai
from google.genai import errors, types

from rewind_vcs.providers.base import Normalised, ToolCall
from rewind_vcs.providers.gemini import GeminiProvider
from rewind_vcs.store.records import Usage
from tests.providers.builders import exchange
from tests.providers.wire_server import WireServer

P = GeminiProvider()
MODEL = "gemini-2.5-flash"


def _view(text: str = "", calls: list[ToolCall] | None = None) -> Normalised:
    return Normalised(
        provider="gemini",
        endpoint="generateContent",
        model=MODEL,
        output_text=text,
        output_tool_calls=calls or [],
        usage=Usage(input_tokens=52, output_tokens=39),
    )


@pytest.fixture
def client(wire: WireServer) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=wire.url))


def _generate(
    client: genai.Client, stream: bool
) -> tuple[str, list, types.GenerateContentResponseUsageMetadata, str]:
    if not stream:
        result = client.models.generate_content(model=MODEL, contents="Weather in Paris?")
        parts = result.candidates[0].content.parts
        text = "".join(p.text for p in parts if p.text)
        return (
            text,
            result.function_calls or [],
            result.usage_metadata,
            result.candidates[0].finish_reason,
        )
    text, calls, usage, finish = "", [], None, None
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Weather in Paris?"))
    for chunk in chunks:
        for part in chunk.candidates[0].content.parts or []:
            text += part.text or ""
        calls += chunk.function_calls or []
        usage = chunk.usage_metadata or usage
        finish = chunk.candidates[0].finish_reason or finish
    assert len(chunks) > 1
    return text, calls, usage, finish


@pytest.mark.parametrize("stream", [False, True])
def test_text_and_function_calls(wire: WireServer, client: genai.Client, stream: bool) -> None:
    calls = [ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "CET"})]
    n = _view("I will look that up for you now.", calls)
    wire.respond(P.synthesise(n, stream=stream))
    text, got_calls, usage, finish = _generate(client, stream)
    assert text == n.output_text
    assert [(c.name, c.args) for c in got_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert (usage.prompt_token_count, usage.candidates_token_count) == (52, 39)
    assert finish == types.FinishReason.STOP
    path = "/v1/models/gemini-2.5-flash:" + (
        "streamGenerateContent?alt=sse" if stream else "generateContent"
    )
    assert wire.last.path == path
    back = P.normalise(exchange(wire.last, P.synthesise(n, stream=stream)))
    assert (back.output_text, back.usage, back.stream) == (n.output_text, n.usage, stream)
    assert [(c.name, c.arguments) for c in back.output_tool_calls] == [
        (c.name, c.arguments) for c in calls
    ]


def test_synthesised_stream_uses_crlf_separators() -> None:
    body = P.synthesise(_view("a b c"), stream=True).body
    assert body.startswith(b"data: {") and body.endswith(b"}\r\n\r\n")


def test_length_finish_maps_to_max_tokens(wire: WireServer, client: genai.Client) -> None:
    n = _view("truncat")
    n.finish_reason = "max_tokens"  # as Anthropic names it
    wire.respond(P.synthesise(n, stream=False))
    assert _generate(client, False)[3] == types.FinishReason.MAX_TOKENS


@pytest.mark.parametrize(
    ("status", "exception", "name"),
    [
        (400, errors.ClientError, "INVALID_ARGUMENT"),
        (404, errors.ClientError, "NOT_FOUND"),
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_error_response(
    wire: WireServer, client: genai.Client, status: int, exception: type, name: str, stream: bool
) -> None:
    message = "rewind: no recorded step matches this request"
    wire.respond(P.error_response(status, message))
    with pytest.raises(exception) as caught:
        _generate(client, stream)
    assert (caught.value.code, caught.value.status, caught.value.message) == (status, name, message)
