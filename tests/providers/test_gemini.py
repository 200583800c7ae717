"""Gemini wire bytes -> normalised view, and match keys of what the real google-genai SDK sends."""

from __future__ import annotations

import json

import pytest
from google import genai
from google.genai import types

from rewind_vcs.providers.gemini import GeminiProvider, parse_path
from rewind_vcs.store.records import Request, StepStatus
from tests.providers.builders import exchange, request, response, sse_body
from tests.providers.wire_server import WireServer

P = GeminiProvider()
HOST = "generativelanguage.googleapis.com"
PATH = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"

BODY = {
    "contents": [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "CiQBVKhc7",
                }
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 18}}}],
        },
    ],
    "systemInstruction": {"parts": [{"text": "You are a weather bot."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather",
                    "parameters": {"type": "OBJECT"},
                }
            ]
        },
        {"googleSearch": {}},
    ],
    "generationConfig": {"temperature": 0.3, "maxOutputTokens": 512, "stopSequences": ["END"]},
}


def _chunk(parts: list, finish: str | None = None, usage: dict | None = None) -> dict:
    candidate = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "usageMetadata": usage or {"promptTokenCount": 52, "totalTokenCount": 52},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "mLkGaZ-YB8mNz7IP8pHY2Aw",
    }


FINAL_USAGE = {
    "promptTokenCount": 52,
    "candidatesTokenCount": 9,
    "thoughtsTokenCount": 30,
    "totalTokenCount": 91,
}


def test_paths() -> None:
    assert parse_path(PATH) == ("gemini-2.5-flash", "generateContent")
    assert parse_path("/v1/models/gemini-2.0-flash-001:streamGenerateContent?alt=sse") == (
        "gemini-2.0-flash-001",
        "streamGenerateContent",
    )
    vertex = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
    assert parse_path(vertex) == ("gemini-2.5-pro", "generateContent")
    assert parse_path("/v1beta/models/gemini-2.5-flash:countTokens") == (None, None)
    assert P.recognises(HOST, PATH) and not P.recognises(HOST, "/v1beta/models")


def test_request_view() -> None:
    n = P.normalise_request(request(PATH, BODY, host=HOST))
    assert (n.provider, n.endpoint, n.model, n.stream) == (
        "gemini",
        "generateContent",
        "gemini-2.5-flash",
        False,
    )
    assert n.system == "You are a weather bot."
    assert [(m.role, m.content, m.name) for m in n.messages] == [
        ("user", "Weather in Paris?", None),
        ("assistant", "", None),
        ("tool", '{"temp_c": 18}', "get_weather"),
    ]
    assert n.messages[1].tool_calls[0].arguments == {"city": "Paris"}
    assert n.params == {"temperature": 0.3, "max_tokens": 512, "stop": ["END"]}
    assert [t["name"] for t in n.tools] == ["get_weather", "googleSearch"]


def test_plain_response_skips_thoughts_and_counts_thinking_tokens() -> None:
    body = _chunk(
        [{"text": "Thinking about it", "thought": True}, {"text": "It is 18°C in Paris."}],
        "STOP",
        FINAL_USAGE,
    )
    n = P.normalise(exchange(request(PATH, BODY, host=HOST), response(body)))
    assert n.output_text == "It is 18°C in Paris."
    assert n.finish_reason == "STOP"
    assert (n.usage.input_tokens, n.usage.output_tokens) == (52, 39)
    assert n.summary() == 'gemini-2.5-flash: "It is 18°C in Paris."'


def test_sse_stream_with_crlf_separators_and_function_call() -> None:
    body = sse_body(
        _chunk([{"text": "Let me "}]),
        _chunk([{"text": "check."}]),
        _chunk(
            [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Rome"}},
                    "thoughtSignature": "x",
                }
            ],
            "STOP",
            FINAL_USAGE,
        ),
        eol="\r\n",
    )
    resp = response(body, stream=True)
    third = body.index(b"data:", 10)
    resp.chunks = [(0.6, third), (0.9, len(body) - third)]
    n = P.normalise(exchange(request(STREAM_PATH, BODY, host=HOST), resp))
    assert n.stream and n.endpoint == "streamGenerateContent"
    assert n.output_text == "Let me check."
    assert [(c.name, c.arguments) for c in n.output_tool_calls] == [
        ("get_weather", {"city": "Rome"})
    ]
    assert n.usage.total == 91
    assert n.ttft_ms == 600.0
    assert n.summary() == 'gemini-2.5-flash: tool_calls: get_weather(city="Rome")'


def test_stream_without_alt_sse_is_a_json_array() -> None:
    body = json.dumps([_chunk([{"text": "A"}]), _chunk([{"text": "B"}], "MAX_TOKENS", FINAL_USAGE)])
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    n = P.normalise(exchange(request(path, BODY, host=HOST), response(body.encode())))
    assert (n.output_text, n.finish_reason) == ("AB", "MAX_TOKENS")


def test_error_body() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    n = P.normalise(exchange(request(PATH, BODY, host=HOST), response(body, status=429)))
    assert n.status is StepStatus.ERROR
    assert n.error_code == "RESOURCE_EXHAUSTED"
    assert n.summary() == "429 RESOURCE_EXHAUSTED: Resource has been exhausted (e.g. check quota)."


def test_snake_case_rest_bodies() -> None:
    body = {
        "system_instruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"parts": [{"text": "Hi"}]}],
        "generation_config": {"max_output_tokens": 5},
    }
    n = P.normalise_request(request(PATH, body, host=HOST))
    assert (n.system, n.user_input, n.params) == ("Be brief.", "Hi", {"max_tokens": 5})


# --- match keys of what the real SDK sends ---------------------------------------------


@pytest.fixture
def sent(wire: WireServer):
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=wire.url))

    def send(model: str = "gemini-2.5-flash", call_id: str | None = None, **config) -> Request:
        wire.respond(response(_chunk([{"text": "ok"}], "STOP", FINAL_USAGE)))
        contents = [
            types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
            types.Content(
                role="model",
                parts=[
                    types.Part(
                        function_call=types.FunctionCall(
                            name="get_weather", args={"city": "Paris"}, id=call_id
                        )
                    )
                ],
            ),
            types.Content(
                role="user",
                parts=[
                    types.Part(
                        function_response=types.FunctionResponse(
                            name="get_weather", response={"t": 18}, id=call_id
                        )
                    )
                ],
            ),
        ]
        client.models.generate_content(
            model=model,
            contents=contents,
            config=types.GenerateContentConfig(
                system_instruction="You are a weather bot.", **config
            ),
        )
        return wire.last

    return send


def test_match_key_ignores_call_ids_and_headers(sent) -> None:
    first = sent(call_id="abc123")
    base = P.match_key(first)
    assert first.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert P.match_key(sent(call_id="zzz999")) == base
    other = Request(
        "POST", "https", HOST, first.path, [("x-goog-api-client", "other/1.0")], first.body
    )
    assert P.match_key(other) == base


def test_match_key_changes_with_semantics(sent) -> None:
    base = P.match_key(sent())
    assert P.match_key(sent(model="gemini-2.5-pro")) != base  # the model is in the path
    assert P.match_key(sent(temperature=0.9)) != base
    assert P.match_key(sent(max_output_tokens=10)) != base
