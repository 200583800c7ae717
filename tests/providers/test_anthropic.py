"""Anthropic wire bytes -> normalised view, and match keys of what the real SDK sends."""

from __future__ import annotations

import json

import anthropic
import pytest

from rewind_vcs.providers.anthropic import AnthropicProvider
from rewind_vcs.store.records import Request, StepStatus, TransportError
from tests.providers.builders import exchange, request, response, sse_body
from tests.providers.wire_server import WireServer

P = AnthropicProvider()
MODEL = "claude-haiku-4-5-20251001"

HISTORY = [
    {"role": "user", "content": "What's the weather in SF?"},
    {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "I should call the tool.",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA",
            },
            {"type": "text", "text": "Let me check."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                "content": "15 degrees",
            }
        ],
    },
]
REQUEST = {
    "model": MODEL,
    "max_tokens": 1024,
    "system": [
        {"type": "text", "text": "You are a weather bot.", "cache_control": {"type": "ephemeral"}}
    ],
    "messages": HISTORY,
    "tools": [
        {
            "name": "get_weather",
            "description": "Get the current weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
        }
    ],
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1"},
}
MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [{"type": "text", "text": "It's 15 degrees and foggy in San Francisco."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 410,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1200,
        "output_tokens": 14,
        "service_tier": "standard",
    },
}


def _post(body: dict) -> Request:
    return request("/v1/messages", body, host="api.anthropic.com")


def test_request_view() -> None:
    n = P.normalise_request(_post(REQUEST))
    assert (n.provider, n.endpoint, n.model) == ("anthropic", "messages", MODEL)
    assert n.system == "You are a weather bot."
    assert [(m.role, m.content, m.tool_call_id) for m in n.messages] == [
        ("user", "What's the weather in SF?", None),
        ("assistant", "Let me check.", None),  # thinking is not content
        ("tool", "15 degrees", "toolu_01A09q90qw90lq917835lq9"),
    ]
    assert n.messages[1].tool_calls[0].arguments == {"location": "San Francisco, CA"}
    assert n.params == {"max_tokens": 1024, "stop": ["END"]}
    assert n.tools[0]["parameters"]["properties"] == {"location": {"type": "string"}}
    assert n.user_input == "What's the weather in SF?"


def test_plain_message_counts_cached_prompt_tokens() -> None:
    n = P.normalise(exchange(_post(REQUEST), response(MESSAGE)))
    assert n.output_text == "It's 15 degrees and foggy in San Francisco."
    assert n.finish_reason == "end_turn"
    assert (n.usage.input_tokens, n.usage.output_tokens) == (1610, 14)
    assert n.status is StepStatus.OK
    assert n.summary() == f'{MODEL}: "It\'s 15 degrees and foggy in San Francisco."'


def _ev(name: str, **data) -> tuple[str, dict]:
    return name, {"type": name, **data}


STREAM = sse_body(
    _ev(
        "message_start",
        message={
            **MESSAGE,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 472, "output_tokens": 2},
        },
    ),
    _ev("content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}),
    _ev(
        "content_block_delta",
        index=0,
        delta={"type": "thinking_delta", "thinking": "Need the tool."},
    ),
    _ev("content_block_delta", index=0, delta={"type": "signature_delta", "signature": "EqQB"}),
    _ev("content_block_stop", index=0),
    _ev("content_block_start", index=1, content_block={"type": "text", "text": ""}),
    _ev("ping"),
    _ev("content_block_delta", index=1, delta={"type": "text_delta", "text": "Okay, let me"}),
    _ev("content_block_delta", index=1, delta={"type": "text_delta", "text": " check."}),
    _ev("content_block_stop", index=1),
    _ev(
        "content_block_start",
        index=2,
        content_block={
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    ),
    _ev("content_block_delta", index=2, delta={"type": "input_json_delta", "partial_json": ""}),
    _ev(
        "content_block_delta",
        index=2,
        delta={"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
    ),
    _ev(
        "content_block_delta",
        index=2,
        delta={"type": "input_json_delta", "partial_json": 'ncisco, CA"}'},
    ),
    _ev("content_block_stop", index=2),
    _ev(
        "message_delta",
        delta={"stop_reason": "tool_use", "stop_sequence": None},
        usage={"output_tokens": 89},
    ),
    _ev("message_stop"),
)


def test_stream_with_thinking_text_and_input_json_delta() -> None:
    times = [0.4 + i * 0.01 for i in range(17)]
    n = P.normalise(
        exchange(
            _post({**REQUEST, "stream": True}), response(STREAM, stream=True, chunk_times=times)
        )
    )
    assert n.stream
    assert n.output_text == "Okay, let me check."
    assert [(c.name, c.arguments, c.id) for c in n.output_tool_calls] == [
        ("get_weather", {"location": "San Francisco, CA"}, "toolu_01T1x1fJ34qAmk2tNTrN7Up6")
    ]
    assert n.finish_reason == "tool_use"
    assert (n.usage.input_tokens, n.usage.output_tokens) == (472, 89)
    assert n.ttft_ms == 420.0  # the first content_block_delta, not message_start


def test_stream_usage_in_message_delta_overrides_cumulatively() -> None:
    body = sse_body(
        _ev(
            "message_start",
            message={**MESSAGE, "content": [], "usage": {"input_tokens": 10, "output_tokens": 1}},
        ),
        _ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "Hi"}),
        _ev(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 5},
        ),
    )
    n = P.normalise(exchange(_post(REQUEST), response(body, stream=True)))
    assert (n.usage.input_tokens, n.usage.output_tokens) == (15, 5)


def test_events_without_event_line_are_ignored_like_the_sdk() -> None:
    body = sse_body(
        _ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "ignored"},
        },
        _ev("content_block_delta", index=0, delta={"type": "text_delta", "text": "kept"}),
    )
    assert P.normalise(exchange(_post(REQUEST), response(body, stream=True))).output_text == "kept"


def test_overloaded_error_event_mid_stream() -> None:
    body = sse_body(
        _ev("message_start", message={**MESSAGE, "content": []}),
        (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    )
    n = P.normalise(exchange(_post(REQUEST), response(body, stream=True)))
    assert n.status is StepStatus.ERROR
    assert (n.error_code, n.error_message) == ("overloaded_error", "Overloaded")
    assert n.summary() == "overloaded_error: Overloaded"


def test_http_error_body() -> None:
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit",
        },
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }
    n = P.normalise(exchange(_post(REQUEST), response(body, status=429)))
    assert n.status is StepStatus.ERROR and n.http_status == 429
    assert n.summary().startswith("429 rate_limit_error: Number of request tokens")


def test_recognises() -> None:
    assert P.recognises("api.anthropic.com", "/v1/messages")
    assert P.recognises("127.0.0.1:8080", "/anthropic/v1/messages?beta=true")
    assert not P.recognises("api.anthropic.com", "/v1/messages/count_tokens")
    assert not P.recognises("api.anthropic.com", "/v1/models")


# --- match keys of what the real SDK sends ---------------------------------------------


@pytest.fixture
def sent(wire: WireServer):
    client = anthropic.Anthropic(base_url=wire.url, api_key="sk-ant-test", max_retries=0)

    def send(**kwargs) -> Request:
        wire.respond(response(MESSAGE))
        params = {
            "model": MODEL,
            "max_tokens": 1024,
            "system": "You are a weather bot.",
            "messages": HISTORY,
            "tools": REQUEST["tools"],
            **kwargs,
        }
        client.messages.create(**params)
        return wire.last

    return send


def _renamed(old: str, new: str) -> list[dict]:
    return json.loads(json.dumps(HISTORY).replace(old, new))


def test_match_key_ignores_volatile_fields(sent) -> None:
    base = P.match_key(sent())
    assert (
        P.match_key(sent(messages=_renamed("toolu_01A09q90qw90lq917835lq9", "toolu_other"))) == base
    )
    assert P.match_key(sent(metadata={"user_id": "someone-else"})) == base
    assert P.match_key(sent(user_profile_id="prof_1", workspace_id="wrkspc_1")) == base
    assert (
        P.match_key(sent(messages=_renamed("EqQBCgIYAhIM1gbcDa9GJwZA", "ZZZZ"))) == base
    )  # signatures
    assert P.match_key(sent(extra_headers={"x-stainless-retry-count": "1"})) == base


def test_match_key_changes_with_semantics(sent) -> None:
    base = P.match_key(sent())
    assert P.match_key(sent(tool_choice={"type": "any"})) != base
    assert P.match_key(sent(stop_sequences=["END"])) != base
    assert P.match_key(sent(system="You are a pirate.")) != base
    assert P.match_key(sent(messages=_renamed("15 degrees", "16 degrees"))) != base
    assert P.match_key(sent(model="claude-opus-4-5")) != base
    assert P.match_key(sent(tools=[])) != base


def test_a_client_that_hangs_up_after_the_last_event_got_a_whole_answer() -> None:
    """An agent that stops reading at message_stop (before the chunked terminator) is not an error."""
    whole = P.normalise(exchange(_post({**REQUEST, "stream": True}), response(
        STREAM, stream=True, error=TransportError.CLIENT_DISCONNECTED, error_detail="client left")))
    assert whole.status is StepStatus.OK and whole.error_message is None
    cut = STREAM[: STREAM.index(b"event: message_delta")]
    partial = P.normalise(exchange(_post({**REQUEST, "stream": True}), response(
        cut, stream=True, error=TransportError.CLIENT_DISCONNECTED, error_detail="client left")))
    assert partial.status is StepStatus.ERROR and "client_disconnected" in partial.error_message
