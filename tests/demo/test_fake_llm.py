"""The fake provider, driven through the official SDKs and raw sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

import anthropic
import httpx
import httpx2
import openai
import pytest
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from rewind_vcs.testing import FAULT_HEADER, Endpoint, FakeLLM, Fault, ProviderName

from .conftest import make_gemini_client

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"],
        },
    },
}
CLAUDE = "claude-haiku-4-5"
GEMINI = "gemini-2.5-flash"


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def fault(name: str) -> dict[str, str]:
    return {FAULT_HEADER: name}


# ---------------------------------------------------------------------------
# OpenAI chat completions


def test_chat_plain_answer_quotes_the_user_and_counts_usage(fake, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=user("hello there")
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == (
        "gpt-4o-mini answers, from what you gave me:\n> hello there"
    )
    assert completion.choices[0].finish_reason == "stop"
    assert completion.object == "chat.completion"
    assert completion.usage.prompt_tokens == 3
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-request-id"].startswith("req_")
    assert raw.headers["date"].endswith("GMT")
    assert raw.headers["content-type"].startswith("application/json")
    (seen,) = fake.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer sk-test"
    assert seen.json()["messages"] == user("hello there")


def test_chat_stream_carries_deltas_then_usage_then_done(openai_client):
    plain = openai_client.chat.completions.create(model="gpt-4o-mini", messages=user("stream me"))
    chunks = list(
        openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("stream me"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage_chunk(openai_client):
    chunks = list(
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=user("x"), stream=True)
    )
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_chat_tool_loop_calls_the_first_tool_then_quotes_its_result(openai_client):
    messages = user("population of Lyon")
    first = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[SEARCH_TOOL]
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "search"
    assert json.loads(call.function.arguments) == {"query": "population of Lyon"}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "Lyon has 522,000 people."},
    ]
    second = openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, tools=[SEARCH_TOOL]
    )
    assert second.choices[0].message.content == (
        'The search tool returned: "Lyon has 522,000 people."'
    )
    assert second.choices[0].message.tool_calls is None


def test_chat_streamed_tool_call_reassembles_in_the_sdk_helper(openai_client):
    with openai_client.chat.completions.stream(
        model="gpt-4o-mini", messages=user("weather in Oslo"), tools=[SEARCH_TOOL]
    ) as stream:
        fragments = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(fragments) >= 2  # the arguments really arrive in pieces
    (call,) = final.choices[0].message.tool_calls
    assert call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"query": "weather in Oslo"}


def test_twenty_concurrent_async_calls_each_get_their_own_answer(fake):
    async def run() -> list[str]:
        client = openai.AsyncOpenAI(
            base_url=fake.openai_base_url, api_key="sk-test", max_retries=0, timeout=10
        )
        async with client:
            calls = [
                client.chat.completions.create(model="gpt-4o-mini", messages=user(f"question {i}"))
                for i in range(20)
            ]
            results = await asyncio.gather(*calls)
        return [r.choices[0].message.content for r in results]

    answers = asyncio.run(run())
    for i, answer in enumerate(answers):
        assert answer.endswith(f"> question {i}")
    assert fake.request_count == 20


def test_async_concurrent_streams(fake):
    fake.chunk_delay = 0.002

    async def run() -> list[str]:
        client = openai.AsyncOpenAI(
            base_url=fake.openai_base_url, api_key="sk-test", max_retries=0, timeout=10
        )
        async with client:

            async def one(i: int) -> str:
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=user(f"stream {i}"), stream=True
                )
                return "".join([c.choices[0].delta.content or "" async for c in stream])

            return await asyncio.gather(*(one(i) for i in range(10)))

    for i, text in enumerate(asyncio.run(run())):
        assert text.endswith(f"> stream {i}")


# ---------------------------------------------------------------------------
# OpenAI Responses API and embeddings


def test_responses_plain(openai_client):
    response = openai_client.responses.create(model="gpt-4.1-mini", input="say hi")
    assert response.status == "completed"
    assert response.output_text == "gpt-4.1-mini answers, from what you gave me:\n> say hi"
    assert response.usage.input_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_responses_stream_typed_events_end_in_completed(openai_client):
    events = list(openai_client.responses.create(model="gpt-4.1-mini", input="say hi", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert "response.output_text.delta" in types
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == events[-1].response.output_text

    with openai_client.responses.stream(model="gpt-4.1-mini", input="say hi") as stream:
        for _ in stream:
            pass
        assert stream.get_final_response().output_text == deltas


def test_responses_function_call_loop(openai_client):
    tools = [{"type": "function", **SEARCH_TOOL["function"]}]
    with openai_client.responses.stream(
        model="gpt-4.1-mini", input="rainfall in Lima", tools=tools
    ) as stream:
        for _ in stream:
            pass
        first = stream.get_final_response()
    (call,) = first.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"query": "rainfall in Lima"}
    second = openai_client.responses.create(
        model="gpt-4.1-mini",
        tools=tools,
        input=[
            {"role": "user", "content": "rainfall in Lima"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "6 mm a year"},
        ],
    )
    assert second.output_text == 'The search tool returned: "6 mm a year"'


def test_embeddings_are_deterministic_unit_vectors_in_both_encodings(openai_client):
    by_default = openai_client.embeddings.create(
        model="text-embedding-3-small", input=["cat", "dog"]
    )
    as_floats = openai_client.embeddings.create(
        model="text-embedding-3-small", input=["cat", "dog"], encoding_format="float"
    )
    cat, dog = (d.embedding for d in as_floats.data)
    assert len(cat) == 1536
    assert [d.embedding for d in by_default.data] == [cat, dog]  # base64 decodes to the same
    assert cat != dog
    assert abs(sum(v * v for v in cat) - 1.0) < 1e-4
    small = openai_client.embeddings.create(
        model="text-embedding-3-small", input="cat", dimensions=8
    )
    assert len(small.data[0].embedding) == 8
    assert as_floats.usage.prompt_tokens == 2


# ---------------------------------------------------------------------------
# Anthropic


def test_anthropic_plain(anthropic_client):
    raw = anthropic_client.messages.with_raw_response.create(
        model=CLAUDE, max_tokens=256, messages=user("hello claude")
    )
    message = raw.parse()
    assert message.content[0].text == f"{CLAUDE} answers, from what you gave me:\n> hello claude"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 3
    assert message.usage.output_tokens > 0
    assert raw.headers["request-id"] == raw.headers["x-request-id"]


def test_anthropic_stream_event_order(anthropic_client):
    events = list(
        anthropic_client.messages.create(
            model=CLAUDE, max_tokens=256, messages=user("hello claude"), stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert kinds[1:3] == ["content_block_start", "content_block_delta"]  # the SDK drops the ping
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[0].message.usage.input_tokens == 3
    assert events[-2].usage.output_tokens > 1
    with anthropic_client.messages.stream(
        model=CLAUDE, max_tokens=256, messages=user("hello claude")
    ) as stream:
        assert stream.get_final_text().endswith("> hello claude")


def test_anthropic_stream_has_a_ping_and_event_lines(fake):
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": user("hi")}
    with httpx.Client() as client:
        text = client.post(fake.url + "/v1/messages", json=body).text
    blocks = [b for b in text.split("\n\n") if b]
    assert all(b.startswith("event: ") and "\ndata: " in b for b in blocks)
    assert 'event: ping\ndata: {"type":"ping"}' in blocks


def test_anthropic_streamed_tool_loop(anthropic_client):
    tools = [{"name": "search", "input_schema": SEARCH_TOOL["function"]["parameters"]}]
    messages = user("tallest tower")
    with anthropic_client.messages.stream(
        model=CLAUDE, max_tokens=256, messages=messages, tools=tools
    ) as stream:
        json_deltas = [e for e in stream if e.type == "input_json"]
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    (call,) = first.content
    assert call.type == "tool_use" and call.name == "search"
    assert call.input == {"query": "tallest tower"}
    assert len(json_deltas) >= 2
    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": "Burj Khalifa, 828 m"}
            ],
        },
    ]
    second = anthropic_client.messages.create(
        model=CLAUDE, max_tokens=256, messages=messages, tools=tools
    )
    assert second.content[0].text == 'The search tool returned: "Burj Khalifa, 828 m"'


# ---------------------------------------------------------------------------
# Gemini


def test_gemini_plain_and_stream(fake, gemini_client):
    response = gemini_client.models.generate_content(model=GEMINI, contents="hello gemini")
    assert response.text == f"{GEMINI} answers, from what you gave me:\n> hello gemini"
    assert response.candidates[0].finish_reason == genai_types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    chunks = list(
        gemini_client.models.generate_content_stream(model=GEMINI, contents="hello gemini")
    )
    assert len(chunks) > 3
    assert "".join(c.text for c in chunks) == response.text
    assert chunks[-1].candidates[0].finish_reason == genai_types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == usage.candidates_token_count
    paths = [r.path for r in fake.requests]
    assert paths == [
        f"/v1/models/{GEMINI}:generateContent",
        f"/v1/models/{GEMINI}:streamGenerateContent?alt=sse",
    ]
    assert fake.requests[0].headers["x-goog-api-key"] == "gemini-test-key"


def test_gemini_v1beta_path(fake):
    client = make_gemini_client(fake, api_version="v1beta")
    response = client.models.generate_content(model=GEMINI, contents="beta")
    assert response.text.endswith("> beta")
    assert fake.requests[-1].path == f"/v1beta/models/{GEMINI}:generateContent"


def test_gemini_sse_uses_crlf_separators_and_the_array_form_without_alt(fake):
    body = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}
    with httpx.Client() as client:
        sse = client.post(
            f"{fake.url}/v1beta/models/{GEMINI}:streamGenerateContent?alt=sse", json=body
        )
        array = client.post(f"{fake.url}/v1beta/models/{GEMINI}:streamGenerateContent", json=body)
    events = [e for e in sse.text.split("\r\n\r\n") if e]
    assert all(e.startswith("data: ") for e in events)
    items = json.loads(array.text)
    assert [json.loads(e[6:])["candidates"] for e in events] == [i["candidates"] for i in items]
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


def test_gemini_function_call_loop(gemini_client):
    tool = genai_types.Tool(
        function_declarations=[
            genai_types.FunctionDeclaration(
                name="search",
                parameters_json_schema=SEARCH_TOOL["function"]["parameters"],
            )
        ]
    )
    config = genai_types.GenerateContentConfig(tools=[tool])
    contents = [
        genai_types.Content(role="user", parts=[genai_types.Part.from_text(text="deepest lake")])
    ]
    first = gemini_client.models.generate_content(model=GEMINI, contents=contents, config=config)
    (call,) = first.function_calls
    assert (call.name, call.args) == ("search", {"query": "deepest lake"})
    contents += [
        first.candidates[0].content,
        genai_types.Content(
            role="user",
            parts=[
                genai_types.Part.from_function_response(
                    name="search", response={"result": "Baikal"}
                )
            ],
        ),
    ]
    second = gemini_client.models.generate_content(model=GEMINI, contents=contents, config=config)
    assert second.text == 'The search tool returned: "Baikal"'
    streamed = list(
        gemini_client.models.generate_content_stream(
            model=GEMINI, contents=contents[:1], config=config
        )
    )
    assert streamed[-1].function_calls[0].args == {"query": "deepest lake"}


# ---------------------------------------------------------------------------
# Faults


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("429", openai.RateLimitError),
        ("500", openai.InternalServerError),
        ("reset", openai.APIConnectionError),
        ("cut", openai.APIConnectionError),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_faults_raise_the_sdk_exceptions(openai_client, name, error, stream):
    with pytest.raises(error) as caught:
        result = openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=user("x"), stream=stream, extra_headers=fault(name)
        )
        for _ in result if stream else ():
            pass
    if name == "429":
        assert caught.value.body["code"] == "rate_limit_exceeded"
    if name == "500":
        assert caught.value.body["type"] == "server_error"
    # the connection pool recovers: the next call works
    assert openai_client.chat.completions.create(model="gpt-4o-mini", messages=user("ok")).choices


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("429", anthropic.RateLimitError),
        ("500", anthropic.InternalServerError),
        ("reset", anthropic.APIConnectionError),
        ("cut", anthropic.APIConnectionError),
    ],
)
def test_anthropic_faults_raise_the_sdk_exceptions(anthropic_client, name, error):
    with pytest.raises(error) as caught:
        anthropic_client.messages.create(
            model=CLAUDE, max_tokens=64, messages=user("x"), extra_headers=fault(name)
        )
    if name in ("429", "500"):
        assert caught.value.body["type"] == "error"
        assert (
            caught.value.body["error"]["type"]
            == {"429": "rate_limit_error", "500": "api_error"}[name]
        )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("429", anthropic.RateLimitError),
        ("reset", anthropic.APIConnectionError),
        # a stream that breaks after its head surfaces as the transport's error:
        # the Anthropic SDK does not wrap errors raised while iterating a stream
        ("cut", httpx2.RemoteProtocolError),
    ],
)
def test_anthropic_stream_faults(anthropic_client, name, error):
    received = []
    with pytest.raises(error):
        with anthropic_client.messages.stream(
            model=CLAUDE, max_tokens=64, messages=user("x y z"), extra_headers=fault(name)
        ) as stream:
            received.extend(stream)
    # cut after three events: message_start, the ping (which the SDK drops), content_block_start
    assert len(received) == (2 if name == "cut" else 0)


@pytest.mark.parametrize(
    ("name", "error", "status"),
    [
        ("429", genai_errors.ClientError, "RESOURCE_EXHAUSTED"),
        ("500", genai_errors.ServerError, "INTERNAL"),
    ],
)
def test_gemini_error_faults(gemini_client, name, error, status):
    config = genai_types.GenerateContentConfig(
        http_options=genai_types.HttpOptions(headers=fault(name))
    )
    with pytest.raises(error) as caught:
        gemini_client.models.generate_content(model=GEMINI, contents="x", config=config)
    assert caught.value.code == int(name)
    assert caught.value.status == status


def test_gemini_reset_and_cut_break_the_call(gemini_client):
    for name in ("reset", "cut"):
        config = genai_types.GenerateContentConfig(
            http_options=genai_types.HttpOptions(headers=fault(name))
        )
        with pytest.raises(httpx2.TransportError):
            list(
                gemini_client.models.generate_content_stream(
                    model=GEMINI, contents="x", config=config
                )
            )


def test_cut_stream_delivers_some_chunks_first(openai_client):
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in openai_client.chat.completions.create(
            model="gpt-4o-mini",
            messages=user("a b c d e f g h"),
            stream=True,
            extra_headers=fault("cut"),
        ):
            received.append(chunk)
    assert len(received) == 3


def test_hang_times_out_and_stop_still_returns_promptly():
    fake = FakeLLM().start()
    threads_before = threading.active_count()
    client = openai.OpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", max_retries=0, timeout=0.3
    )
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=user("x"), extra_headers=fault("hang"))
    # a second hung request, still open while we stop
    stuck = socket.create_connection(("127.0.0.1", fake.port))
    stuck.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n"
        + FAULT_HEADER.encode()
        + b": hang\r\n\r\n{}"
    )
    time.sleep(0.05)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 1.0
    stuck.settimeout(2)
    assert stuck.recv(100) == b""  # the server closed it, without an answer
    stuck.close()
    client.close()
    assert threading.active_count() == threads_before - 1


def test_slow_stream_first_chunk_arrives_well_before_the_last(fake, openai_client):
    fake.slow_delay = 0.05
    openai_client.chat.completions.create(model="m", messages=user("warm up"), stream=True).close()
    started = time.monotonic()
    arrivals = []
    for _chunk in openai_client.chat.completions.create(
        model="gpt-4o-mini",
        messages=user("one two three four five six seven eight"),
        stream=True,
        extra_headers=fault("slow"),
    ):
        arrivals.append(time.monotonic() - started)
    assert len(arrivals) > 10
    assert arrivals[0] < 0.2
    assert arrivals[-1] - arrivals[0] > 0.05 * (len(arrivals) - 2)


def test_slow_plain_response_is_delayed(fake, openai_client):
    fake.slow_delay = 0.2
    started = time.monotonic()
    openai_client.chat.completions.create(
        model="m", messages=user("x"), extra_headers=fault("slow")
    )
    assert time.monotonic() - started >= 0.2


def test_fault_script_is_consumed_in_order_and_the_header_wins():
    with FakeLLM(faults=[Fault.RATE_LIMIT, None, "500", "none"]) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="m", messages=user("1"))
        assert client.chat.completions.create(model="m", messages=user("2")).choices
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=user("3"))
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model="m", messages=user("4"), extra_headers=fault("429")
            )
        assert client.chat.completions.create(model="m", messages=user("5")).choices


def test_sdk_retries_a_scripted_429_and_gets_the_first_scripted_reply():
    with FakeLLM(faults=["429"], reply=[{"text": "first"}, {"text": "second"}]) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=1)
        answer = client.chat.completions.create(model="m", messages=user("x"))
        assert answer.choices[0].message.content == "first"
        assert fake.request_count == 2


def test_unknown_fault_is_a_400_naming_the_choices(openai_client):
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model="m", messages=user("x"), extra_headers=fault("boom")
        )
    assert "boom" in caught.value.message and "hang" in caught.value.message


# ---------------------------------------------------------------------------
# Scripts


def test_scripted_callable_decides_and_none_falls_back():
    seen = []

    def reply(provider, endpoint, body):
        seen.append((provider, endpoint))
        if provider is ProviderName.ANTHROPIC:
            return {"text": "scripted for claude", "usage": {"input_tokens": 7, "output_tokens": 3}}
        if endpoint is Endpoint.CHAT_COMPLETIONS and body["messages"][-1]["content"] == "call":
            return {"tool_call": {"name": "lookup", "arguments": {"id": 42}}}
        return None

    with FakeLLM(reply=reply) as fake:
        oa = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        an = anthropic.Anthropic(base_url=fake.url, api_key="k", max_retries=0)
        message = an.messages.create(model=CLAUDE, max_tokens=10, messages=user("x"))
        assert message.content[0].text == "scripted for claude"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 3)
        call = (
            oa.chat.completions.create(model="m", messages=user("call"))
            .choices[0]
            .message.tool_calls[0]
        )
        assert (call.function.name, json.loads(call.function.arguments)) == ("lookup", {"id": 42})
        default = oa.chat.completions.create(model="m", messages=user("other"))
        assert default.choices[0].message.content.endswith("> other")
    assert seen == [
        (ProviderName.ANTHROPIC, Endpoint.MESSAGES),
        (ProviderName.OPENAI, Endpoint.CHAT_COMPLETIONS),
        (ProviderName.OPENAI, Endpoint.CHAT_COMPLETIONS),
    ]


def test_scripted_list_is_consumed_then_the_default_returns():
    with FakeLLM(reply=[{"text": "one"}, {"text": "two"}]) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        texts = [
            client.chat.completions.create(model="m", messages=user("q")).choices[0].message.content
            for _ in range(3)
        ]
    assert texts == ["one", "two", "m answers, from what you gave me:\n> q"]


# ---------------------------------------------------------------------------
# Determinism, HTTP framing, lifecycle


def _post(fake: FakeLLM, path: str, body: dict) -> httpx.Response:
    with httpx.Client() as client:
        return client.post(fake.url + path, json=body)


def test_same_request_same_body_but_fresh_volatile_headers(fake):
    body = {"model": "m", "messages": user("same"), "tools": [SEARCH_TOOL]}
    first, second = (_post(fake, "/v1/chat/completions", body) for _ in range(2))
    assert first.content == second.content
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    other = _post(fake, "/v1/chat/completions", {**body, "messages": user("different")})
    assert other.json()["id"] != first.json()["id"]


def test_volatile_ids_make_each_body_unique():
    with FakeLLM(volatile_ids=True) as fake:
        body = {"model": "m", "messages": user("same")}
        first, second = (_post(fake, "/v1/chat/completions", body).json() for _ in range(2))
    assert first["id"] != second["id"]
    assert first["choices"] == second["choices"]


def _raw_exchange(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send one request and read one response; returns (head, raw body bytes)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, rest = data.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        while not rest.endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
    else:
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(rest) < length:
            rest += sock.recv(65536)
    return head, rest


def _raw_request(body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        + b"content-length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )


def test_keep_alive_plain_uses_content_length_and_streams_use_chunked(fake):
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        head, body = _raw_exchange(sock, _raw_request({"model": "m", "messages": user("a")}))
        assert head.startswith(b"HTTP/1.1 200")
        assert b"content-length:" in head.lower()
        assert json.loads(body)["object"] == "chat.completion"
        head, body = _raw_exchange(
            sock, _raw_request({"model": "m", "messages": user("a b"), "stream": True})
        )
        assert b"transfer-encoding: chunked" in head.lower()
        assert b"content-type: text/event-stream" in head.lower()
        assert body.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
    assert fake.connections_accepted == 1


def test_sdk_calls_share_one_kept_alive_connection(fake, openai_client):
    for i in range(10):
        openai_client.chat.completions.create(model="m", messages=user(str(i)))
    assert fake.connections_accepted == 1


def test_streaming_with_tcp_nodelay_has_no_delayed_ack_stalls(fake):
    """Without TCP_NODELAY a small chunk after the head waits ~40 ms for a delayed ACK."""
    request = _raw_request({"model": "m", "messages": user("one two three four"), "stream": True})
    timings = []
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(15):
            started = time.perf_counter()
            _raw_exchange(sock, request)
            timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.025


def test_chunks_leave_the_server_one_by_one(fake):
    fake.chunk_delay = 0.03
    request = _raw_request(
        {"model": "m", "messages": user("one two three four five"), "stream": True}
    )
    reads = []
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        sock.sendall(request)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            piece = sock.recv(65536)
            reads.append((time.monotonic(), piece))
            data += piece
    events_per_read = [p.count(b"data: ") for _, p in reads]
    assert len(reads) >= 8
    assert max(events_per_read) <= 2


def test_unknown_path_is_404_and_bad_json_is_400(fake):
    assert _post(fake, "/v2/nothing", {}).status_code == 404
    with httpx.Client() as client:
        bad = client.post(fake.url + "/v1/messages", content=b"{not json")
        assert client.get(fake.url + "/v1/chat/completions").status_code == 405
    assert bad.status_code == 400
    assert bad.json()["type"] == "error"  # Anthropic's error shape on an Anthropic path


def test_paths_without_v1_prefix_are_accepted(fake):
    body = {"model": "m", "messages": user("no prefix")}
    assert _post(fake, "/chat/completions", body).json()["object"] == "chat.completion"


def test_start_stop_many_times_leaks_no_threads_or_ports():
    threads_before = threading.active_count()
    for _ in range(10):
        fake = FakeLLM().start()
        port = fake.port
        assert (
            _post(fake, "/v1/chat/completions", {"model": "m", "messages": user("x")}).status_code
            == 200
        )
        fake.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert threading.active_count() == threads_before


def test_restart_and_double_start():
    fake = FakeLLM()
    with fake:
        with pytest.raises(RuntimeError):
            fake.start()
    fake.stop()  # stopping twice is harmless
    with fake:
        assert (
            _post(fake, "/v1/chat/completions", {"model": "m", "messages": user("x")}).status_code
            == 200
        )


def test_stop_closes_an_idle_kept_alive_connection(fake):
    sock = socket.create_connection(("127.0.0.1", fake.port))
    _raw_exchange(sock, _raw_request({"model": "m", "messages": user("x")}))
    fake.stop()
    sock.settimeout(2)
    assert sock.recv(10) == b""
    sock.close()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_until_interrupted(stop_signal):
    process = subprocess.Popen(
        [sys.executable, "-m", "rewind_vcs.testing.fake_llm", "--port", "0", "--chunk-delay", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    )
    try:
        first_line = process.stdout.readline()
        assert first_line.startswith("fake LLM listening on http://127.0.0.1:")
        url = first_line.split(" on ")[1].strip()
        with httpx.Client() as client:
            reply = client.post(
                url + "/v1/chat/completions", json={"model": "m", "messages": user("cli")}
            )
        assert reply.json()["choices"][0]["message"]["content"].endswith("> cli")
    finally:
        process.send_signal(stop_signal)
        assert process.wait(timeout=5) == 0
        process.stdout.close()


def test_a_failing_reply_script_is_a_500_and_is_kept_for_the_test():
    def reply(provider, endpoint, body):
        raise KeyError("no such scenario")

    with FakeLLM(reply=reply) as fake:
        client = openai.OpenAI(base_url=fake.openai_base_url, api_key="k", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="m", messages=user("x"))
        assert "no such scenario" in caught.value.message
        (error,) = fake.errors
        assert isinstance(error, KeyError)
