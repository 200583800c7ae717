"""No recorded body, however malformed, makes a provider raise.

Two sweeps: every field of realistic request and response bodies replaced, one at
a time, by a value of every other JSON type (type confusion anywhere), and random
bytes, JSON and event streams.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewind_vcs.providers.anthropic import AnthropicProvider
from rewind_vcs.providers.base import WireFormat
from rewind_vcs.providers.gemini import GeminiProvider
from rewind_vcs.providers.generic import GenericProvider
from rewind_vcs.providers.matching import diff_fields
from rewind_vcs.providers.openai import OpenAIProvider
from rewind_vcs.providers.sse import parse_sse
from rewind_vcs.store.records import Exchange, Request, Response, TransportError
from tests.providers import test_anthropic, test_gemini, test_openai

OPENAI, ANTHROPIC, GEMINI = OpenAIProvider(), AnthropicProvider(), GeminiProvider()
WRONG = [None, True, -1, 2.5, "x", [], [None], {"x": 1}]

_TOOL_MESSAGE = {
    "role": "assistant",
    "content": None,
    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}


def _events(body: bytes) -> list[list]:
    return [[e.event, json.loads(e.data)] for e in parse_sse(body) if e.data != "[DONE]"]


# (provider, path, request template, response template, stream)
CASES = {
    "chat": (
        OPENAI,
        "/v1/chat/completions",
        {**test_openai.CHAT_REQUEST, "messages": test_openai.TOOL_HISTORY},
        test_openai.CHAT_COMPLETION,
        False,
    ),
    "chat-tools": (
        OPENAI,
        "/v1/chat/completions",
        test_openai.CHAT_REQUEST,
        {
            **test_openai.CHAT_COMPLETION,
            "choices": [{"index": 0, "message": _TOOL_MESSAGE, "finish_reason": "tool_calls"}],
        },
        False,
    ),
    "chat-stream": (
        OPENAI,
        "/v1/chat/completions",
        test_openai.CHAT_REQUEST,
        _events(test_openai.TOOL_STREAM),
        True,
    ),
    "responses": (
        OPENAI,
        "/v1/responses",
        test_openai.RESPONSES_REQUEST,
        test_openai._response_object(
            [
                test_openai.MESSAGE_ITEM,
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ]
        ),
        False,
    ),
    "responses-stream": (
        OPENAI,
        "/v1/responses",
        test_openai.RESPONSES_REQUEST,
        [
            [
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "x",
                },
            ],
            [
                "response.output_item.done",
                {
                    "type": "response.output_item.done",
                    "output_index": 1,
                    "item": {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "arguments": "{}",
                    },
                },
            ],
            [
                "response.completed",
                {
                    "type": "response.completed",
                    "response": test_openai._response_object([test_openai.MESSAGE_ITEM]),
                },
            ],
        ],
        True,
    ),
    "embeddings": (
        OPENAI,
        "/v1/embeddings",
        {"model": "m", "input": ["a", "b"]},
        {
            "object": "list",
            "data": [{"index": 0, "embedding": [0.5]}, {"index": 1, "embedding": "AAAAPw=="}],
            "usage": {"prompt_tokens": 1},
        },
        False,
    ),
    "messages": (
        ANTHROPIC,
        "/v1/messages",
        test_anthropic.REQUEST,
        {
            **test_anthropic.MESSAGE,
            "content": [
                {"type": "text", "text": "a"},
                {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            ],
        },
        False,
    ),
    "messages-stream": (
        ANTHROPIC,
        "/v1/messages",
        test_anthropic.REQUEST,
        _events(test_anthropic.STREAM),
        True,
    ),
    "gemini": (
        GEMINI,
        "/v1beta/models/m:generateContent",
        test_gemini.BODY,
        test_gemini._chunk(
            [{"text": "x"}, {"functionCall": {"name": "f", "args": {}}}],
            "STOP",
            test_gemini.FINAL_USAGE,
        ),
        False,
    ),
    "gemini-stream": (
        GEMINI,
        "/v1/models/m:streamGenerateContent?alt=sse",
        test_gemini.BODY,
        [[None, test_gemini._chunk([{"text": "x"}], "STOP", test_gemini.FINAL_USAGE)]],
        True,
    ),
}


def _paths(value: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            out += _paths(inner, (*prefix, i))
    return out


def _replace(value: object, path: tuple, new: object) -> object:
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def _sse(value: object) -> bytes:
    items = value if isinstance(value, list) else [value]
    out = b""
    for item in items:
        pair = (
            isinstance(item, list)
            and len(item) == 2
            and (item[0] is None or isinstance(item[0], str))
        )
        event, payload = (item[0], item[1]) if pair else (None, item)
        if event:
            out += f"event: {' '.join(event.split())}\n".encode()
        out += b"data: " + json.dumps(payload).encode() + b"\n\n"
    return out


def _check(
    provider: WireFormat,
    path: str,
    request_body: bytes,
    response_body: bytes,
    stream: bool,
    **response_fields,
) -> None:
    request = Request("POST", "https", "h", path, [], request_body)
    response = Response(
        status=response_fields.pop("status", 200),
        headers=[("content-type", "text/event-stream" if stream else "application/json")],
        body=response_body,
        chunks=response_fields.pop("chunks", [(0.1, len(response_body))]),
        **response_fields,
    )
    n = provider.normalise(Exchange(request, response, started_at=0.0, duration=0.3))
    assert isinstance(n.summary(), str) and isinstance(n.output_text, str)
    assert len(provider.match_key(request)) == 64
    provider.synthesise(n, stream=stream)


@pytest.mark.parametrize("case", sorted(CASES))
def test_any_field_of_any_type(case: str) -> None:
    provider, path, request_template, response_template, stream = CASES[case]
    encode = _sse if stream else (lambda v: json.dumps(v).encode())
    good_request = json.dumps(request_template).encode()
    good_response = encode(response_template)
    _check(provider, path, good_request, good_response, stream)
    original = Request("POST", "https", "h", path, [], good_request)
    for field in _paths(request_template):
        for wrong in WRONG:
            body = json.dumps(_replace(request_template, field, wrong)).encode()
            _check(provider, path, body, good_response, stream)
            diff_fields(original, Request("POST", "https", "h", path, [], body))
    for field in _paths(response_template):
        for wrong in WRONG:
            _check(
                provider,
                path,
                good_request,
                encode(_replace(response_template, field, wrong)),
                stream,
            )


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=30,
)
bodies = (
    json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.lists(st.tuples(st.none() | st.text(max_size=20), json_values).map(list), max_size=5).map(
        _sse
    )
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.sampled_from(sorted(CASES)),
    request_body=bodies,
    response_body=bodies,
    status=st.sampled_from([0, 200, 400, 429, 500]),
    transport=st.none() | st.sampled_from(list(TransportError)),
    cut=st.integers(0, 50),
)
def test_random_bodies(
    case: str,
    request_body: bytes,
    response_body: bytes,
    status: int,
    transport: TransportError | None,
    cut: int,
) -> None:
    provider, path, _, _, stream = CASES[case]
    cut = min(cut, len(response_body))
    for p in (provider, GenericProvider()):
        _check(
            p,
            path,
            request_body,
            response_body,
            stream,
            status=status,
            error=transport,
            chunks=[(0.1, cut), (0.2, len(response_body) - cut)],
        )
