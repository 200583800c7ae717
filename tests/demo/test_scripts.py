"""Prompts read from the providers' normalised views of requests, and the default and
scripted replies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rewind_vcs.providers.hosts import ProviderName
from rewind_vcs.providers.registry import detect
from rewind_vcs.store.records import Request
from rewind_vcs.testing.scripts import (
    Endpoint,
    Prompt,
    Reply,
    ReplySource,
    ToolCall,
    ToolResult,
    count_tokens,
    default_reply,
    prompt_from,
    tool_arguments,
)

_PATHS = {
    Endpoint.CHAT_COMPLETIONS: "/v1/chat/completions",
    Endpoint.RESPONSES: "/v1/responses",
    Endpoint.MESSAGES: "/v1/messages",
    Endpoint.GENERATE_CONTENT: "/v1beta/models/{model}:generateContent",
}


def prompt_from_request(endpoint: Endpoint, body: dict[str, Any], model: str) -> Prompt:
    """The prompt the fake reads from a request, through the provider's own reader."""
    path = _PATHS[endpoint].format(model=model)
    request = Request("POST", "http", "127.0.0.1", path, [], json.dumps(body).encode())
    return prompt_from(detect(request).normalise_request(request), model)

SCHEMA = {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}


def test_openai_chat_prompt_reads_the_last_user_message_and_trailing_tool_results() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "find"}, {"type": "text", "text": "it"}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "a",
                        "type": "function",
                        "function": {"name": "search", "arguments": "{}"},
                    },
                    {
                        "id": "b",
                        "type": "function",
                        "function": {"name": "fetch", "arguments": "{}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "one"},
            {"role": "tool", "tool_call_id": "b", "content": "two"},
        ],
        "tools": [{"type": "function", "function": {"name": "search", "parameters": SCHEMA}}],
    }
    prompt = prompt_from_request(Endpoint.CHAT_COMPLETIONS, body, "gpt")
    assert prompt.user_text == "find\nit"
    assert not prompt.last_is_user
    assert prompt.tool_results == (ToolResult("search", "one"), ToolResult("fetch", "two"))
    assert [t.name for t in prompt.tools] == ["search"]
    assert (
        default_reply(prompt).text
        == 'The search tool returned: "one" The fetch tool returned: "two"'
    )


def test_openai_chat_with_tools_and_a_user_turn_calls_the_first_tool() -> None:
    body = {
        "messages": [{"role": "user", "content": "weather in Rome"}],
        "tools": [
            {"type": "function", "function": {"name": "weather", "parameters": SCHEMA}},
            {"type": "function", "function": {"name": "other", "parameters": {}}},
        ],
    }
    reply = default_reply(prompt_from_request(Endpoint.CHAT_COMPLETIONS, body, "gpt"))
    assert reply.text == ""
    assert reply.tool_calls == (ToolCall("weather", {"query": "weather in Rome"}),)


def test_responses_prompt_string_input_and_function_call_output() -> None:
    assert prompt_from_request(Endpoint.RESPONSES, {"input": "hi"}, "m").user_text == "hi"
    body = {
        "instructions": "be brief",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "look up"}]},
            {"type": "function_call", "call_id": "c1", "name": "search", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "found it"},
        ],
    }
    prompt = prompt_from_request(Endpoint.RESPONSES, body, "m")
    assert prompt.user_text == "look up"
    assert prompt.tool_results == (ToolResult("search", "found it"),)
    assert "be brief" in prompt.all_text


def test_anthropic_prompt_tool_result_blocks() -> None:
    body = {
        "system": "sys",
        "messages": [
            {"role": "user", "content": "what time is it"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "clock", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "noon"}],
                    }
                ],
            },
        ],
        "tools": [
            {"name": "clock", "input_schema": {"type": "object"}},
            {"type": "web_search", "name": "ws"},
        ],
    }
    prompt = prompt_from_request(Endpoint.MESSAGES, body, "claude")
    assert prompt.user_text == "what time is it"
    assert prompt.tool_results == (ToolResult("clock", "noon"),)
    assert not prompt.last_is_user
    assert [t.name for t in prompt.tools] == ["clock"]  # server tools have no input_schema


def test_gemini_prompt_function_response_and_schema_spellings() -> None:
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "w", "response": {"result": "sunny"}}}],
            },
        ],
        "tools": [
            {"functionDeclarations": [{"name": "w", "parameters_json_schema": SCHEMA}]},
            {"functionDeclarations": [{"name": "v", "parametersJsonSchema": SCHEMA}]},
        ],
    }
    prompt = prompt_from_request(Endpoint.GENERATE_CONTENT, body, "gemini")
    assert prompt.tool_results == (ToolResult("w", "sunny"),)
    assert [t.parameters for t in prompt.tools] == [SCHEMA, SCHEMA]
    assert prompt.user_text == "weather"


def test_tool_arguments_prefers_required_string_parameters() -> None:
    schema = {
        "type": "object",
        "properties": {
            "limit": {"type": "integer"},
            "topic": {"type": "STRING"},
            "q": {"type": "string"},
        },
        "required": ["limit", "q"],
    }
    assert tool_arguments(schema, "cats") == {"q": "cats"}
    assert tool_arguments({"properties": {"n": {"type": "integer"}}}, "3") == {"n": "3"}
    assert tool_arguments({"type": "object"}, "x") == {}


def test_plain_answer_names_the_model_and_quotes_every_line() -> None:
    body = {"messages": [{"role": "user", "content": "line one\n\nline two"}]}
    reply = default_reply(prompt_from_request(Endpoint.CHAT_COMPLETIONS, body, "gpt-x"))
    assert reply.text == "gpt-x answers, from what you gave me:\n> line one\n>\n> line two"
    empty = default_reply(prompt_from_request(Endpoint.CHAT_COMPLETIONS, {"messages": []}, "gpt-x"))
    assert empty.text == "Hello from gpt-x. Ask me anything."


def test_reply_from_dict() -> None:
    reply = Reply.from_dict(
        {
            "text": "t",
            "tool_call": {"name": "f", "arguments": {"a": 1}},
            "usage": {"output_tokens": 9},
        }
    )
    assert reply == Reply("t", (ToolCall("f", {"a": 1}),), None, 9)
    with pytest.raises(ValueError, match="unknown reply keys"):
        Reply.from_dict({"txt": "typo"})


def test_reply_source_list_then_default_and_type_errors() -> None:
    prompt = prompt_from_request(
        Endpoint.MESSAGES, {"messages": [{"role": "user", "content": "q"}]}, "m"
    )
    source = ReplySource([Reply("a"), {"text": "b"}])
    texts = [
        source.reply_for(ProviderName.ANTHROPIC, Endpoint.MESSAGES, {}, prompt).text for _ in range(3)
    ]
    assert texts == ["a", "b", default_reply(prompt).text]
    with pytest.raises(TypeError):
        ReplySource(["not a reply"])  # type: ignore[list-item]


def test_count_tokens_is_about_four_characters_each() -> None:
    assert count_tokens("") == 1
    assert count_tokens("abcd") == 1
    assert count_tokens("abcde") == 2
    assert count_tokens("x" * 400) == 100
