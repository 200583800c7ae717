"""Synthesised OpenAI responses and errors, parsed back by the real openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from rewind_vcs.providers.base import Normalised, ToolCall
from rewind_vcs.providers.openai import OpenAIProvider
from rewind_vcs.store.records import Usage
from tests.providers.builders import exchange, request
from tests.providers.wire_server import WireServer

P = OpenAIProvider()
MESSAGES = [{"role": "user", "content": "Weather in Paris?"}]


def _view(
    endpoint: str = "chat.completions", text: str = "", calls: list[ToolCall] | None = None
) -> Normalised:
    return Normalised(
        provider="openai",
        endpoint=endpoint,
        model="gpt-4o-mini",
        output_text=text,
        output_tool_calls=calls or [],
        usage=Usage(input_tokens=42, output_tokens=17),
        latency_ms=900.0,
        ttft_ms=250.0,
        started_at=1_750_000_000.0,
    )


CALLS = [
    ToolCall("get_weather", {"city": "Paris", "units": "C"}, "call_abc"),
    ToolCall("get_time", {"tz": "Europe/Paris"}, "call_def"),
]


@pytest.fixture
def client(wire: WireServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{wire.url}/v1", api_key="sk-test", max_retries=2)


def _round_trip(n: Normalised, stream: bool, path: str) -> Normalised:
    synthesised = P.synthesise(n, stream=stream)
    back = P.normalise(exchange(request(path, {"model": n.model, "stream": stream}), synthesised))
    assert back.output_text == n.output_text
    assert [(c.name, c.arguments, c.id) for c in back.output_tool_calls] == [
        (c.name, c.arguments, c.id) for c in n.output_tool_calls
    ]
    assert back.usage == n.usage
    return back


@pytest.mark.parametrize("stream", [False, True])
def test_chat_text(wire: WireServer, client: openai.OpenAI, stream: bool) -> None:
    n = _view(text="The capital of France is Paris. It has been since 987.")
    wire.respond(P.synthesise(n, stream=stream))
    if stream:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as s:
            pieces = [e.delta for e in s if e.type == "content.delta"]
            done = s.get_final_completion()
        assert len(pieces) > 1 and "".join(pieces) == n.output_text
    else:
        done = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert done.choices[0].message.content == n.output_text
    assert done.choices[0].finish_reason == "stop"
    assert done.model == "gpt-4o-mini"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (42, 17)
    back = _round_trip(n, stream, "/v1/chat/completions")
    assert back.finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_chat_tool_calls(wire: WireServer, client: openai.OpenAI, stream: bool) -> None:
    n = _view(calls=CALLS)
    wire.respond(P.synthesise(n, stream=stream))
    if stream:
        with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as s:
            done = s.get_final_completion()
    else:
        done = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    message = done.choices[0].message
    assert [
        (c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls
    ] == [
        ("call_abc", "get_weather", {"city": "Paris", "units": "C"}),
        ("call_def", "get_time", {"tz": "Europe/Paris"}),
    ]
    assert done.choices[0].finish_reason == "tool_calls"
    assert done.usage.total_tokens == 59
    _round_trip(n, stream, "/v1/chat/completions")


def test_plain_stream_iteration_sees_every_chunk_with_choices(
    wire: WireServer, client: openai.OpenAI
) -> None:
    """Clients that index choices[0] on every chunk must not break on the usage."""
    wire.respond(P.synthesise(_view(text="Hi there"), stream=True))
    text = ""
    usage = None
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ):
        text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == "Hi there" and usage.completion_tokens == 17


@pytest.mark.parametrize("stream", [False, True])
def test_responses_api(wire: WireServer, client: openai.OpenAI, stream: bool) -> None:
    n = _view("responses", text="It is sunny.", calls=CALLS[:1])
    wire.respond(P.synthesise(n, stream=stream))
    if stream:
        with client.responses.stream(model="gpt-4o-mini", input="Weather?") as s:
            deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
            done = s.get_final_response()
        assert "".join(deltas) == "It is sunny."
    else:
        done = client.responses.create(model="gpt-4o-mini", input="Weather?")
    assert done.output_text == "It is sunny."
    calls = [item for item in done.output if item.type == "function_call"]
    assert [(c.name, c.arguments, c.call_id) for c in calls] == [
        ("get_weather", '{"city": "Paris", "units": "C"}', "call_abc")
    ]
    assert (done.usage.input_tokens, done.usage.output_tokens) == (42, 17)
    assert done.status == "completed"
    _round_trip(n, stream, "/v1/responses")


@pytest.mark.parametrize("encoding", [None, "float"])
def test_embeddings(wire: WireServer, client: openai.OpenAI, encoding: str | None) -> None:
    vectors = [[0.5, -0.25, 2.0], [1.0, 0.0, -3.5]]  # exact in float32
    n = _view("embeddings")
    n.model = "text-embedding-3-small"
    n.output_embeddings = vectors
    n.usage = Usage(input_tokens=4)
    # the SDK asks for base64 unless told otherwise; the view keeps what was asked
    n.params = {"encoding_format": "base64"} if encoding is None else {"encoding_format": encoding}
    wire.respond(P.synthesise(n, stream=False))
    kwargs = {} if encoding is None else {"encoding_format": encoding}
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], **kwargs)
    assert [d.embedding for d in result.data] == vectors
    assert result.usage.prompt_tokens == 4
    back = P.normalise(exchange(wire.last, P.synthesise(n, stream=False)))
    assert back.output_embeddings == vectors


def test_synthesis_is_deterministic_and_carries_timing() -> None:
    n = _view(text="one two three four five six seven eight nine ten")
    first, second = P.synthesise(n, stream=True), P.synthesise(n, stream=True)
    assert first.body == second.body
    assert first.chunks[0][0] == 0.25 and first.chunks[-1][0] == 0.9
    assert sum(size for _, size in first.chunks) == len(first.body)
    back = P.normalise(exchange(request("/v1/chat/completions", {"stream": True}), first))
    assert back.ttft_ms is not None and 250.0 <= back.ttft_ms < 900.0


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_error_response_raises_the_sdk_class_without_retries(
    wire: WireServer, client: openai.OpenAI, status: int, exception: type[Exception]
) -> None:
    message = "rewind: no recorded step matches this request (closest: step 3)"
    wire.respond(P.error_response(status, message, code="rewind_replay_miss"))
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.status_code == status
    assert caught.value.body["message"] == message
    assert caught.value.code == "rewind_replay_miss"
    assert len(wire.requests) == 1  # x-should-retry: false, even with max_retries=2


def test_error_response_on_a_streaming_call(wire: WireServer, client: openai.OpenAI) -> None:
    wire.respond(P.error_response(404, "no recording"))
    with pytest.raises(openai.NotFoundError, match="no recording"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
