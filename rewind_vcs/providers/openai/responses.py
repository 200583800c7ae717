"""The OpenAI Responses API (``/v1/responses``): requests, response objects, typed event streams."""

from __future__ import annotations

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

_STRUCTURE = frozenset({"model", "input", "instructions", "tools", "stream"})
_FINAL = ("response.completed", "response.incomplete", "response.failed")


def read_request(body: dict[str, Any], n: Normalised) -> None:
    messages: list[Message] = []
    inputs = body.get("input")
    if isinstance(inputs, str):
        messages.append(Message("user", inputs))
    for raw in as_list(inputs):
        item = as_dict(raw)
        kind = item.get("type")
        if kind == "function_call":
            call = ToolCall(
                name=as_str(item.get("name")) or "",
                arguments=parse_arguments(item.get("arguments")),
                id=as_str(item.get("call_id")),
            )
            if messages and messages[-1].role == "assistant":
                messages[-1].tool_calls.append(call)
            else:
                messages.append(Message("assistant", "", [call]))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            messages.append(
                Message(
                    "tool",
                    output if isinstance(output, str) else content_text(output),
                    tool_call_id=as_str(item.get("call_id")),
                )
            )
        elif "role" in item and kind in (None, "message"):
            messages.append(Message(role(item.get("role")), content_text(item.get("content"))))
        elif isinstance(raw, str):
            messages.append(Message("user", raw))
    instructions = as_str(body.get("instructions"))
    n.system, n.messages = split_system(messages, [instructions] if instructions else [])
    n.tools = [
        tool_definition(
            tool.get("name") or tool.get("type"),
            tool.get("description"),
            tool.get("parameters"),
            type=None if tool.get("type") == "function" else tool.get("type"),
        )
        for tool in map(as_dict, as_list(body.get("tools")))
        if tool
    ]
    n.params = params(body, _STRUCTURE)


def canonical_ids(body: dict[str, Any], ids: IdMap) -> None:
    """Call, item and previous-response ids by order of appearance, in place."""
    items = IdMap("item")
    for item in map(as_dict, as_list(body.get("input"))):
        if "call_id" in item:
            item["call_id"] = ids(item["call_id"])
        if "id" in item:
            item["id"] = items(item["id"])
        item.pop("encrypted_content", None)  # reasoning state, opaque and new each run
    if "previous_response_id" in body:
        body["previous_response_id"] = IdMap("response")(body["previous_response_id"])


def read_object(data: dict[str, Any], n: Normalised) -> None:
    """A ``response`` object: output items, usage, status."""
    n.model = n.model or as_str(data.get("model"))
    texts = []
    calls = []
    for item in map(as_dict, as_list(data.get("output"))):
        if item.get("type") == "message":
            for part in map(as_dict, as_list(item.get("content"))):
                text = as_str(part.get("text"))
                refusal = as_str(part.get("refusal"))
                if part.get("type") == "output_text" and text is not None:
                    texts.append(text)
                elif part.get("type") == "refusal" and refusal:
                    texts.append(refusal)
        elif item.get("type") in ("function_call", "custom_tool_call"):
            arguments = item.get("arguments", item.get("input"))
            calls.append(
                ToolCall(
                    as_str(item.get("name")) or "",
                    parse_arguments(arguments),
                    as_str(item.get("call_id")),
                )
            )
    n.output_text = "".join(texts)
    n.output_tool_calls = calls
    if isinstance(data.get("usage"), dict):
        n.usage = usage_of(data["usage"])
    status = as_str(data.get("status"))
    reason = as_str(as_dict(data.get("incomplete_details")).get("reason"))
    n.finish_reason = reason if status == "incomplete" and reason else status
    if status == "failed" or data.get("error"):
        read_error(data.get("error") or {"message": "response failed"}, n)


def read_stream(events: list[SSEEvent], n: Normalised) -> None:
    texts: dict[tuple[int, int], str] = {}
    calls: dict[int, CallSlot] = {}
    final: dict[str, Any] | None = None
    for event in events:
        data = as_dict(event.json())
        kind = as_str(data.get("type")) or event.event or ""
        if kind in _FINAL:
            final = as_dict(data.get("response"))
        elif kind in ("response.created", "response.in_progress"):
            n.model = n.model or as_str(as_dict(data.get("response")).get("model"))
        elif kind == "response.output_text.delta":
            key = (as_int(data.get("output_index")), as_int(data.get("content_index")))
            texts[key] = texts.get(key, "") + (as_str(data.get("delta")) or "")
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = as_dict(data.get("item"))
            if item.get("type") == "function_call":
                slot = calls.setdefault(as_int(data.get("output_index")), CallSlot())
                slot.id = as_str(item.get("call_id")) or slot.id
                slot.name = as_str(item.get("name")) or slot.name
                arguments = as_str(item.get("arguments"))
                if kind.endswith(".done") and arguments is not None:
                    slot.arguments = arguments
        elif kind == "response.function_call_arguments.delta":
            slot = calls.setdefault(as_int(data.get("output_index")), CallSlot())
            slot.arguments += as_str(data.get("delta")) or ""
        elif kind == "error":
            read_error(data.get("error") if isinstance(data.get("error"), dict) else data, n)
    if final:
        read_object(final, n)
        return
    n.output_text = "".join(texts[key] for key in sorted(texts))
    n.output_tool_calls = [slot.call() for _, slot in sorted(calls.items())]


def is_token_event(data: dict[str, Any]) -> bool:
    return data.get("type") in (
        "response.output_text.delta",
        "response.function_call_arguments.delta",
    )


def _output(n: Normalised, rid: str) -> list[dict[str, Any]]:
    output: list[dict[str, Any]] = []
    if n.output_text or not n.output_tool_calls:
        part = {"type": "output_text", "text": n.output_text, "annotations": [], "logprobs": []}
        output.append(
            {
                "id": synthetic_id("msg_", rid),
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        )
    for i, call in enumerate(n.output_tool_calls):
        output.append(
            {
                "id": synthetic_id("fc_", rid, i),
                "type": "function_call",
                "status": "completed",
                "call_id": call.id or synthetic_id("call_", rid, i),
                "name": call.name,
                "arguments": dump_arguments(call.arguments),
            }
        )
    return output


def synthesise(n: Normalised, stream: bool, shape: BodyShape) -> Response:
    model = n.model or "unknown"
    rid = response_id("resp_", shape, model, n.output_text, n.started_at)
    incomplete = neutral_finish(n) == "length"
    output = _output(n, rid)
    response = {
        "id": rid,
        "object": "response",
        "created_at": int(n.started_at),
        "status": "incomplete" if incomplete else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "instructions": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "usage": {
            "input_tokens": n.usage.input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": n.usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": n.usage.total,
        },
    }
    if not stream:
        return json_response(200, response, latency_ms=n.latency_ms)
    events = _stream_events(response, output, shape)
    events.append(
        (
            "response.incomplete" if incomplete else "response.completed",
            {
                "type": "response.incomplete" if incomplete else "response.completed",
                "sequence_number": len(events),
                "response": response,
            },
        )
    )
    return sse_response(events, ttft_ms=n.ttft_ms, latency_ms=n.latency_ms)


def _stream_events(
    response: dict[str, Any], output: list[dict[str, Any]], shape: BodyShape
) -> list[tuple[str | None, Any]]:
    """The typed events up to (not including) the final one."""
    events: list[tuple[str | None, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

    start = {**response, "status": "in_progress", "output": [], "usage": None}
    start["incomplete_details"] = None
    emit("response.created", response=start)
    emit("response.in_progress", response=start)
    for index, item in enumerate(output):
        if item["type"] == "message":
            part = item["content"][0]
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            emit("response.content_part.added", **where, part={**part, "text": ""})
            for piece in text_pieces(part["text"], shape.piece_chars):
                emit("response.output_text.delta", **where, delta=piece, logprobs=[])
            emit("response.output_text.done", **where, text=part["text"], logprobs=[])
            emit("response.content_part.done", **where, part=part)
        else:
            where = {"item_id": item["id"], "output_index": index}
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for piece in text_pieces(item["arguments"], max(shape.piece_chars, 24)):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        emit("response.output_item.done", output_index=index, item=item)
    return events
