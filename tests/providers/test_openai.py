"""OpenAI wire bytes -> normalised view, and match keys of the requests the real SDK sends."""

from __future__ import annotations

import base64
import json
import struct

import openai
import pytest

from rewind_vcs.providers.openai import OpenAIProvider
from rewind_vcs.store.records import Request, StepKind, StepStatus, TransportError
from tests.providers.builders import exchange, request, response, sse_body
from tests.providers.wire_server import WireServer

P = OpenAIProvider()

CHAT_REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "developer", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
    ],
    "temperature": 0.2,
    "max_completion_tokens": 200,
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
    "user": "user-123",
}

CHAT_COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "The capital of France is Paris.",
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 14,
        "completion_tokens": 8,
        "total_tokens": 22,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}


def _chunk(delta: dict, finish: str | None = None, choices: bool = True, usage: dict | None = None):
    return {
        "id": "chatcmpl-BXk1",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        if choices
        else [],
        "usage": usage,
    }


TOOL_STREAM = sse_body(
    _chunk({"role": "assistant", "content": None, "refusal": None}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
    _chunk({}, "tool_calls"),
    _chunk(
        {}, choices=False, usage={"prompt_tokens": 80, "completion_tokens": 31, "total_tokens": 111}
    ),
    "[DONE]",
)


def test_chat_completion_plain() -> None:
    n = P.normalise(
        exchange(request("/v1/chat/completions", CHAT_REQUEST), response(CHAT_COMPLETION))
    )
    assert (n.provider, n.endpoint, n.kind) == ("openai", "chat.completions", StepKind.LLM)
    assert n.model == "gpt-4o-mini"  # what the caller asked for
    assert n.system == "You are terse."
    assert [(m.role, m.content) for m in n.messages] == [("user", "Weather in Paris?")]
    assert n.user_input == "Weather in Paris?"
    assert n.params == {"temperature": 0.2, "max_tokens": 200}  # `user` is not semantic
    assert n.tools == [
        {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert n.output_text == "The capital of France is Paris."
    assert n.finish_reason == "stop"
    assert (n.usage.input_tokens, n.usage.output_tokens) == (14, 8)
    assert (n.status, n.http_status, n.stream, n.ttft_ms) == (StepStatus.OK, 200, False, None)
    assert n.latency_ms == 800.0
    assert n.summary() == 'gpt-4o-mini: "The capital of France is Paris."'


def test_chat_stream_joins_tool_call_fragments_by_index_and_reads_usage_chunk() -> None:
    body = TOOL_STREAM
    resp = response(body, stream=True, chunk_times=[0.3, 0.41, 0.5, 0.6, 0.7, 0.8, 0.81, 0.82])
    req = request("/v1/chat/completions", {**CHAT_REQUEST, "stream": True})
    n = P.normalise(exchange(req, resp))
    assert n.stream is True
    assert [(c.name, c.arguments, c.id) for c in n.output_tool_calls] == [
        ("get_weather", {"city": "Paris"}, "call_DdmO9pD3xa9XTPNJ32zg2hcA"),
        ("get_time", {"tz": "CET"}, "call_2"),
    ]
    assert n.output_text == ""
    assert n.finish_reason == "tool_calls"
    assert (n.usage.input_tokens, n.usage.output_tokens) == (80, 31)
    # the role-only first chunk is not a token: the first tool-call fragment is
    assert n.ttft_ms == 410.0
    assert n.summary() == ('gpt-4o-mini: tool_calls: get_weather(city="Paris"), get_time(tz="CET")')


def test_chat_stream_text_split_across_arbitrary_network_chunks() -> None:
    body = sse_body(
        _chunk({"role": "assistant", "content": ""}),
        _chunk({"content": "Hel"}),
        _chunk({"content": "lo ✓"}),
        _chunk({}, "stop"),
        "[DONE]",
    )
    resp = response(body, stream=True)
    resp.chunks = [(0.1, 7), (0.2, 150), (0.35, len(body) - 157)]
    n = P.normalise(exchange(request("/v1/chat/completions", CHAT_REQUEST), resp))
    assert n.output_text == "Hello ✓"
    assert n.ttft_ms == 350.0  # the chunk that completed the first content event
    assert n.usage.total == 0  # no include_usage: unknown, not invented


def test_rate_limit_error() -> None:
    body = {
        "error": {
            "message": "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM): Limit 200000, Used 199000.",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    n = P.normalise(
        exchange(request("/v1/chat/completions", CHAT_REQUEST), response(body, status=429))
    )
    assert n.status is StepStatus.ERROR
    assert n.http_status == 429
    assert n.error_code == "rate_limit_exceeded"
    assert n.error_message.startswith("Rate limit reached for gpt-4o-mini")
    assert n.summary().startswith("429 rate_limit_exceeded: Rate limit reached")


def test_error_event_inside_a_200_stream() -> None:
    body = sse_body(
        _chunk({"role": "assistant", "content": "Par"}),
        {"error": {"message": "The server had an error", "type": "server_error", "code": None}},
    )
    n = P.normalise(
        exchange(request("/v1/chat/completions", CHAT_REQUEST), response(body, stream=True))
    )
    assert n.status is StepStatus.ERROR
    assert n.error_message == "The server had an error"
    assert n.error_code == "server_error"
    assert n.output_text == "Par"


def test_connection_reset_mid_stream_keeps_partial_output() -> None:
    body = sse_body(_chunk({"role": "assistant", "content": "Partial"})) + b'data: {"id": "chatc'
    resp = response(
        body, stream=True, error=TransportError.CONNECTION_RESET, error_detail="upstream closed"
    )
    n = P.normalise(exchange(request("/v1/chat/completions", CHAT_REQUEST), resp))
    assert n.output_text == "Partial"
    assert n.status is StepStatus.ERROR
    assert n.error_message == "connection_reset: upstream closed"
    assert n.summary() == "connection_reset: upstream closed"


def test_html_error_page_does_not_raise() -> None:
    resp = response(b"<html><body>502 Bad Gateway</body></html>", status=502)
    resp.headers = [("content-type", "text/html")]
    n = P.normalise(exchange(request("/v1/chat/completions", CHAT_REQUEST), resp))
    assert n.status is StepStatus.ERROR
    assert "502 Bad Gateway" in n.error_message


RESPONSES_REQUEST = {
    "model": "gpt-4.1",
    "instructions": "Be brief.",
    "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
        {
            "type": "function_call",
            "id": "fc_67ca09c6",
            "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "type": "function_call_output",
            "call_id": "call_unLAR8MvFNptuiZK6K6HCy5k",
            "output": "18C",
        },
    ],
    "max_output_tokens": 500,
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
}


def _response_object(output: list, status: str = "completed") -> dict:
    return {
        "id": "resp_67ccd2bed1ec8190b14f964abc054267",
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4.1-2025-04-14",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 123,
        },
    }


MESSAGE_ITEM = {
    "type": "message",
    "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e6",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "It is 18C in Paris.", "annotations": []}],
}


def test_responses_request_and_json_response() -> None:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    body = _response_object([reasoning, MESSAGE_ITEM])
    n = P.normalise(exchange(request("/v1/responses", RESPONSES_REQUEST), response(body)))
    assert (n.endpoint, n.model, n.system) == ("responses", "gpt-4.1", "Be brief.")
    assert [(m.role, m.content, m.tool_call_id) for m in n.messages] == [
        ("user", "Weather in Paris?", None),
        ("assistant", "", None),
        ("tool", "18C", "call_unLAR8MvFNptuiZK6K6HCy5k"),
    ]
    assert n.messages[1].tool_calls[0].arguments == {"city": "Paris"}
    assert n.params == {"max_tokens": 500}
    assert n.tools == [{"name": "get_weather", "parameters": {"type": "object"}}]
    assert n.output_text == "It is 18C in Paris."
    assert n.finish_reason == "completed"
    assert (n.usage.input_tokens, n.usage.output_tokens) == (36, 87)


def test_responses_stream_with_typed_events() -> None:
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_9",
        "name": "get_weather",
        "arguments": '{"city":"Rome"}',
        "status": "completed",
    }
    final = _response_object([call])
    events = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**final, "status": "in_progress", "output": []},
            },
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {**call, "arguments": "", "status": "in_progress"},
            },
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 2,
                "item_id": "fc_1",
                "output_index": 0,
                "delta": '{"city":',
            },
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 3,
                "item_id": "fc_1",
                "output_index": 0,
                "delta": '"Rome"}',
            },
        ),
        (
            "response.output_item.done",
            {
                "type": "response.output_item.done",
                "sequence_number": 4,
                "output_index": 0,
                "item": call,
            },
        ),
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 5, "response": final},
        ),
    ]
    body = sse_body(*events)
    resp = response(body, stream=True, chunk_times=[0.2, 0.25, 0.5, 0.6, 0.7, 0.71])
    n = P.normalise(exchange(request("/v1/responses", {**RESPONSES_REQUEST, "stream": True}), resp))
    assert n.stream
    assert [(c.name, c.arguments, c.id) for c in n.output_tool_calls] == [
        ("get_weather", {"city": "Rome"}, "call_9")
    ]
    assert n.usage.total == 123
    assert n.ttft_ms == 500.0


def test_responses_stream_cut_short_is_rebuilt_from_deltas() -> None:
    body = sse_body(
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 3,
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hello",
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 4,
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "delta": " there",
            },
        ),
    )
    resp = response(body, stream=True, error=TransportError.CLIENT_DISCONNECTED)
    n = P.normalise(exchange(request("/v1/responses", RESPONSES_REQUEST), resp))
    assert n.output_text == "Hello there"
    assert n.status is StepStatus.ERROR and n.error_code == "client_disconnected"


def test_responses_incomplete_and_failed() -> None:
    incomplete = _response_object([MESSAGE_ITEM], status="incomplete")
    incomplete["incomplete_details"] = {"reason": "max_output_tokens"}
    n = P.normalise(exchange(request("/v1/responses", RESPONSES_REQUEST), response(incomplete)))
    assert n.finish_reason == "max_output_tokens" and n.status is StepStatus.OK
    failed = _response_object([], status="failed")
    failed["error"] = {"code": "server_error", "message": "Something went wrong"}
    n = P.normalise(exchange(request("/v1/responses", RESPONSES_REQUEST), response(failed)))
    assert n.status is StepStatus.ERROR and n.error_message == "Something went wrong"


def test_embeddings_base64_and_float() -> None:
    vector = [0.25, -1.5, 3.0]
    packed = base64.b64encode(struct.pack("<3f", *vector)).decode()
    body = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 1, "embedding": [1.0, 2.0, 3.0]},
            {"object": "embedding", "index": 0, "embedding": packed},
        ],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 5, "total_tokens": 5},
    }
    req = request(
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"},
    )
    n = P.normalise(exchange(req, response(body)))
    assert n.endpoint == "embeddings"
    assert n.output_embeddings == [vector, [1.0, 2.0, 3.0]]
    assert [m.content for m in n.messages] == ["a", "b"]
    assert n.usage.input_tokens == 5 and n.usage.output_tokens == 0
    assert n.summary() == "text-embedding-3-small: 2 embeddings × 3"


def test_recognised_paths() -> None:
    assert P.recognises("api.openai.com", "/v1/chat/completions")
    assert P.recognises("localhost:11434", "/v1/chat/completions")  # Ollama
    assert P.recognises("openrouter.ai", "/api/v1/chat/completions")
    assert P.recognises(
        "x.openai.azure.com", "/openai/deployments/d/chat/completions?api-version=1"
    )
    assert P.recognises("api.openai.com", "/v1/responses")
    assert not P.recognises("api.openai.com", "/v1/models")
    assert not P.recognises("api.openai.com", "/v1/responses/resp_1/input_items")


# --- match keys of what the real SDK sends ---------------------------------------------

TOOL_HISTORY = [
    {"role": "system", "content": "You help with weather."},
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_A1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "call_B2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_A1", "content": "18C"},
    {"role": "tool", "tool_call_id": "call_B2", "content": "24C"},
]


def _with_ids(first: str, second: str, swap_results: bool = False) -> list[dict]:
    history = json.loads(
        json.dumps(TOOL_HISTORY).replace("call_A1", first).replace("call_B2", second)
    )
    if swap_results:
        history[3]["content"], history[4]["content"] = history[4]["content"], history[3]["content"]
    return history


@pytest.fixture
def sent(wire: WireServer):
    """Send a chat completion with the real SDK; return the request it put on the wire."""
    client = openai.OpenAI(base_url=f"{wire.url}/v1", api_key="sk-test", max_retries=0)

    def send(**kwargs) -> Request:
        wire.respond(response(CHAT_COMPLETION))
        params = {"model": "gpt-4o-mini", "messages": TOOL_HISTORY, **kwargs}
        client.chat.completions.create(**params)
        return wire.last

    return send


def test_match_key_ignores_volatile_fields(sent) -> None:
    base = P.match_key(sent())
    assert P.match_key(sent(messages=_with_ids("call_x9", "call_y8"))) == base
    assert P.match_key(sent(user="alice")) == base
    assert P.match_key(sent(metadata={"run": "42"}, store=True)) == base
    assert (
        P.match_key(sent(extra_headers={"x-request-id": "abc", "x-stainless-retry-count": "2"}))
        == base
    )


def test_match_key_ignores_key_order_and_headers(sent) -> None:
    original = sent(temperature=0.5)
    body = json.loads(original.body)
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2).encode()
    other = Request(
        "POST", "http", "127.0.0.1:9", original.path, [("x-stainless-os", "MacOS")], reordered
    )
    assert P.match_key(other) == P.match_key(original)


def test_match_key_changes_with_semantics(sent) -> None:
    base = P.match_key(sent())
    assert P.match_key(sent(temperature=0.9)) != base
    assert P.match_key(sent(model="gpt-4o")) != base
    changed = json.loads(json.dumps(TOOL_HISTORY))
    changed[1]["content"] = "Weather in Paris and Milan?"
    assert P.match_key(sent(messages=changed)) != base
    # which result answers which call is semantic, even though ids are not
    assert P.match_key(sent(messages=_with_ids("call_A1", "call_B2", swap_results=True))) != base


def test_stream_flag_and_stream_options(wire: WireServer) -> None:
    client = openai.OpenAI(base_url=f"{wire.url}/v1", api_key="sk-test", max_retries=0)
    wire.respond(
        response(TOOL_STREAM, stream=True),
        response(TOOL_STREAM, stream=True),
        response(CHAT_COMPLETION),
    )
    keys = []
    for extra in ({}, {"stream_options": {"include_usage": True}}):
        for _ in client.chat.completions.create(
            model="gpt-4o-mini", messages=TOOL_HISTORY, stream=True, **extra
        ):
            pass
        keys.append(P.match_key(wire.last))
    client.chat.completions.create(model="gpt-4o-mini", messages=TOOL_HISTORY)
    assert keys[0] == keys[1]  # stream_options never changes the answer
    assert P.match_key(wire.last) != keys[0]  # a stream is a different wire answer


def test_responses_match_key_normalises_call_and_item_ids() -> None:
    def with_ids(call_id: str, item_id: str, previous: str) -> Request:
        body = json.loads(
            json.dumps(RESPONSES_REQUEST)
            .replace("call_unLAR8MvFNptuiZK6K6HCy5k", call_id)
            .replace("fc_67ca09c6", item_id)
        )
        body["previous_response_id"] = previous
        return request("/v1/responses", body)

    a = P.match_key(with_ids("call_1", "fc_1", "resp_1"))
    assert a == P.match_key(with_ids("call_2", "fc_2", "resp_2"))
    changed = json.loads(json.dumps(RESPONSES_REQUEST))
    changed["input"][2]["output"] = "19C"
    assert P.match_key(request("/v1/responses", changed)) != P.match_key(
        request("/v1/responses", RESPONSES_REQUEST)
    )


def test_canonical_request_of_non_json_body() -> None:
    weird = request("/v1/chat/completions", b"\xff\xfe not json")
    assert P.canonical_request(weird)["body"]["sha256"]
    assert P.match_key(weird) != P.match_key(request("/v1/chat/completions", b"other"))
    n = P.normalise_request(weird)
    assert n.messages == [] and n.model is None
