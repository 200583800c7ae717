"""OpenAI chat completions (``/v1/chat/completions``): requests, responses, streams, synthesis."""

from __future__ import annotations

import math
from typing import Any

from rewind_vcs.providers.base import (
    IdMap,
    Message,
    Normalised,
    ToolCall,
    as_dict,
    as_int,
    as_list,
    as_str,
    dump_arguments,
    neutral_finish,
    parse_arguments,
    split_system,
    tool_definition,
)
from rewind_vcs.providers.openai.common import (
    CallSlot,
    content_text,
    params,
    read_error,
    role,
    usage_of,
)
from rewind_vcs.providers.sse import SSEEvent
from rewind_vcs.providers.synthesis import (
    BodyShape,
    json_response,
    response_id,
    sse_response,
    synthetic_id,
    text_pieces,
)
from rewind_vcs.store.records import Response

_STRUCTURE = frozenset({"model", "messages", "tools", "functions", "stream"})


def _call(fn: dict[str, Any], call_id: str | None = None) -> ToolCall:
    return ToolCall(as_str(fn.get("name")) or "", parse_arguments(fn.get("arguments")), call_id)


def read_request(body: dict[str, Any], n: Normalised) -> None:
    messages = []
    for raw in as_list(body.get("messages")):
        m = as_dict(raw)
        calls = [
            _call(as_dict(tc.get("function")), as_str(tc.get("id")))
            for tc in map(as_dict, as_list(m.get("tool_calls")))
            if tc
        ]
        legacy = as_dict(m.get("function_call"))
        if legacy:
            calls.append(_call(legacy))
        messages.append(
            Message(
                role=role(m.get("role")),
                content=content_text(m.get("content")),
                tool_calls=calls,
                tool_call_id=as_str(m.get("tool_call_id")),
                name=as_str(m.get("name")),
            )
        )
    n.system, n.messages = split_system(messages, [])
    tools = []
    for raw in as_list(body.get("tools")):
        tool = as_dict(raw)
        fn = as_dict(tool.get("function"))
        if fn:
            tools.append(
                tool_definition(fn.get("name"), fn.get("description"), fn.get("parameters"))
            )
        elif tool:
            tools.append(
                tool_definition(
                    tool.get("name") or tool.get("type"),
                    tool.get("description"),
                    type=tool.get("type"),
                )
            )
    for raw in as_list(body.get("functions")):
        fn = as_dict(raw)
        tools.append(tool_definition(fn.get("name"), fn.get("description"), fn.get("parameters")))
    n.tools = tools
    n.params = params(body, _STRUCTURE)


def canonical_ids(body: dict[str, Any], ids: IdMap) -> None:
    """Tool-call ids by order of appearance, in place."""
    for m in map(as_dict, as_list(body.get("messages"))):
        for tc in map(as_dict, as_list(m.get("tool_calls"))):
            if "id" in tc:
                tc["id"] = ids(tc["id"])
        if "tool_call_id" in m:
            m["tool_call_id"] = ids(m["tool_call_id"])


def read_completion(data: dict[str, Any], n: Normalised) -> None:
    choice = as_dict(next(iter(as_list(data.get("choices"))), None))
    message = as_dict(choice.get("message"))
    n.output_text = as_str(message.get("content")) or as_str(message.get("refusal")) or ""
    calls = [
        _call(as_dict(tc.get("function")), as_str(tc.get("id")))
        for tc in map(as_dict, as_list(message.get("tool_calls")))
    ]
    legacy = as_dict(message.get("function_call"))
    if legacy:
        calls.append(_call(legacy))
    n.output_tool_calls = calls
    n.finish_reason = as_str(choice.get("finish_reason"))
    n.usage = usage_of(data.get("usage"))


def read_stream(events: list[SSEEvent], n: Normalised) -> None:
    text: list[str] = []
    refusal: list[str] = []
    calls: dict[int, CallSlot] = {}
    for event in events:
        if event.data.startswith("[DONE]"):
            break
        chunk = as_dict(event.json())
        if chunk.get("error"):
            read_error(chunk["error"], n)
            continue
        n.model = n.model or as_str(chunk.get("model"))
        if isinstance(chunk.get("usage"), dict):
            n.usage = usage_of(chunk["usage"])
        for choice in map(as_dict, as_list(chunk.get("choices"))):
            if as_int(choice.get("index")) != 0:
                continue
            delta = as_dict(choice.get("delta"))
            content = as_str(delta.get("content"))
            if content:
                text.append(content)
            refused = as_str(delta.get("refusal"))
            if refused:
                refusal.append(refused)
            for position, tc in enumerate(map(as_dict, as_list(delta.get("tool_calls")))):
                index = tc.get("index")
                slot = calls.setdefault(index if isinstance(index, int) else position, CallSlot())
                fn = as_dict(tc.get("function"))
                slot.id = slot.id or as_str(tc.get("id"))
                slot.name = slot.name or as_str(fn.get("name")) or ""
                slot.arguments += as_str(fn.get("arguments")) or ""
            legacy = as_dict(delta.get("function_call"))
            if legacy:
                slot = calls.setdefault(-1, CallSlot())
                slot.name = slot.name or as_str(legacy.get("name")) or ""
                slot.arguments += as_str(legacy.get("arguments")) or ""
            finish = as_str(choice.get("finish_reason"))
            if finish:
                n.finish_reason = finish
    n.output_text = "".join(text) or "".join(refusal)
    n.output_tool_calls = [
        slot.call()
        for _, slot in sorted(calls.items(), key=lambda kv: kv[0] if kv[0] >= 0 else math.inf)
    ]


def is_token_event(data: dict[str, Any]) -> bool:
    for choice in map(as_dict, as_list(data.get("choices"))):
        delta = as_dict(choice.get("delta"))
        if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
            return True
    return False


def synthesise(n: Normalised, stream: bool, shape: BodyShape) -> Response:
    model = n.model or "unknown"
    rid = response_id("chatcmpl-", shape, model, n.output_text, n.started_at)
    created = int(n.started_at)
    finish = neutral_finish(n)
    calls = [
        (call.id or synthetic_id("call_", rid, i), call)
        for i, call in enumerate(n.output_tool_calls)
    ]
    usage = {
        "prompt_tokens": n.usage.input_tokens,
        "completion_tokens": n.usage.output_tokens,
        "total_tokens": n.usage.total,
    }
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": n.output_text if n.output_text or not calls else None,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": dump_arguments(call.arguments)},
                }
                for call_id, call in calls
            ]
        payload = {
            "id": rid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": usage,
            "system_fingerprint": None,
        }
        return json_response(200, payload, latency_ms=n.latency_ms)

    def chunk(
        delta: dict[str, Any] | None, finish_reason: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choices = (
            []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )
        return {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    events: list[tuple[str | None, Any]] = [
        (None, chunk({"role": "assistant", "content": "", "refusal": None}))
    ]
    events += [
        (None, chunk({"content": piece})) for piece in text_pieces(n.output_text, shape.piece_chars)
    ]
    for index, (call_id, call) in enumerate(calls):
        head = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append((None, chunk({"tool_calls": [head]})))
        for piece in text_pieces(dump_arguments(call.arguments), max(shape.piece_chars, 24)):
            fragment = {"index": index, "function": {"arguments": piece}}
            events.append((None, chunk({"tool_calls": [fragment]})))
    if shape.usage_chunk:  # what stream_options.include_usage asks for
        events.append((None, chunk({}, finish)))
        events.append((None, chunk(None, usage=usage)))
    else:
        # Usage rides on the last chunk (as vLLM sends it) rather than on an extra
        # chunk with no choices, which clients that did not ask for usage may not expect.
        events.append((None, chunk({}, finish, usage=usage)))
    events.append((None, "[DONE]"))
    return sse_response(events, ttft_ms=n.ttft_ms, latency_ms=n.latency_ms)
