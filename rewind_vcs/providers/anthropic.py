"""Anthropic: the messages API, plain and streaming."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from rewind_vcs.providers.base import (
    IdMap,
    Message,
    Normalised,
    ToolCall,
    WireFormat,
    as_dict,
    as_int,
    as_list,
    as_str,
    editable_body,
    load_json,
    looks_like_stream,
    neutral_finish,
    parse_arguments,
    stream_events,
    tool_definition,
)
from rewind_vcs.providers.hosts import ANTHROPIC_HOSTS
from rewind_vcs.providers.sse import SSEEvent
from rewind_vcs.providers.synthesis import (
    DEFAULT_SHAPE,
    BodyShape,
    json_response,
    response_id,
    sse_response,
    synthetic_id,
    text_pieces,
)
from rewind_vcs.store.records import Request, Response, Usage

MESSAGES = "messages"

#: request fields that never change the answer: attribution, billing, cache diagnostics
VOLATILE = frozenset({"metadata", "user_profile_id", "workspace_id", "diagnostics"})
_STRUCTURE = frozenset({"model", "messages", "system", "tools", "stream"})

_STOP_REASONS = {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"}
_FROM_NEUTRAL = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _is_messages_path(path: str) -> bool:
    return urlsplit(path).path.rstrip("/").endswith("/v1/messages")


def _block_text(content: Any) -> str:
    """Text of a content string or block list (images and documents as placeholders)."""
    if isinstance(content, str):
        return content
    texts = []
    for block in map(as_dict, as_list(content)):
        kind = as_str(block.get("type")) or ""
        if kind == "text":
            texts.append(as_str(block.get("text")) or "")
        elif kind in ("thinking", "redacted_thinking", "tool_use", "tool_result"):
            continue
        elif kind:
            texts.append(f"[{kind}]")
    return "\n".join(texts)


def _usage(raw: Any, into: Usage | None = None) -> Usage:
    """Input counts every prompt token: uncached, written to and read from the cache."""
    data = as_dict(raw)
    usage = into or Usage()
    parts = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    if any(isinstance(data.get(p), int) for p in parts):
        usage.input_tokens = sum(as_int(data.get(p)) for p in parts)
    if isinstance(data.get("output_tokens"), int):
        usage.output_tokens = as_int(data.get("output_tokens"))
    return usage


def _read_error(data: dict[str, Any], n: Normalised) -> None:
    error = data.get("error")
    if isinstance(error, dict):
        n.error_message = as_str(error.get("message")) or "error"
        n.error_code = as_str(error.get("type"))
    elif isinstance(error, str):
        n.error_message = error


class AnthropicProvider(WireFormat):
    name = "anthropic"
    hosts = ANTHROPIC_HOSTS

    def recognises(self, host: str, path: str) -> bool:
        return _is_messages_path(path)

    def normalise_request(self, request: Request) -> Normalised:
        body = as_dict(load_json(request.body))
        n = Normalised(
            provider=self.name,
            endpoint=MESSAGES if _is_messages_path(request.path) else "generic",
            model=as_str(body.get("model")),
            stream=body.get("stream") is True,
            method=request.method,
            path=request.path,
        )
        system = body.get("system")
        n.system = _block_text(system) if system not in (None, "", []) else None
        messages: list[Message] = []
        for raw in as_list(body.get("messages")):
            m = as_dict(raw)
            role = "assistant" if m.get("role") == "assistant" else "user"
            content = m.get("content")
            blocks = list(map(as_dict, as_list(content)))
            for block in blocks:
                if block.get("type") == "tool_result":
                    messages.append(
                        Message(
                            "tool",
                            _block_text(block.get("content")),
                            tool_call_id=as_str(block.get("tool_use_id")),
                        )
                    )
            calls = [
                ToolCall(as_str(b.get("name")) or "", b.get("input"), as_str(b.get("id")))
                for b in blocks
                if b.get("type") in ("tool_use", "server_tool_use")
            ]
            text = _block_text(content)
            only_results = blocks and all(b.get("type") == "tool_result" for b in blocks)
            if not only_results:
                messages.append(Message(role, text, calls))
        n.messages = messages
        n.tools = [
            tool_definition(
                tool.get("name") or tool.get("type"),
                tool.get("description"),
                tool.get("input_schema"),
                type=tool.get("type") if tool.get("type") not in (None, "custom") else None,
            )
            for tool in map(as_dict, as_list(body.get("tools")))
            if tool
        ]
        params = {k: v for k, v in body.items() if k not in _STRUCTURE and k not in VOLATILE}
        if "stop_sequences" in params:
            params["stop"] = params.pop("stop_sequences")
        n.params = params
        return n

    def canonical_request(self, request: Request) -> dict[str, Any]:
        endpoint = MESSAGES if _is_messages_path(request.path) else "generic"
        body, raw = editable_body(request, VOLATILE)
        if body is None:
            return {"endpoint": endpoint, "body": raw}
        ids = IdMap("toolu")
        for message in map(as_dict, as_list(body.get("messages"))):
            for block in map(as_dict, as_list(message.get("content"))):
                if block.get("type") in ("tool_use", "server_tool_use") and "id" in block:
                    block["id"] = ids(block["id"])
                if "tool_use_id" in block:
                    block["tool_use_id"] = ids(block["tool_use_id"])
                block.pop("signature", None)  # opaque, new on every run
        return {"endpoint": endpoint, "body": body}

    # --- responses ---------------------------------------------------------------------

    def read_response(self, response: Response, n: Normalised) -> None:
        if looks_like_stream(response):
            n.stream = True
            self._read_stream(stream_events(response), n)
            return
        data = as_dict(load_json(response.body))
        if data.get("type") == "error" or "error" in data:
            _read_error(data, n)
            return
        n.model = n.model or as_str(data.get("model"))
        texts = []
        calls = []
        for block in map(as_dict, as_list(data.get("content"))):
            if block.get("type") == "text":
                texts.append(as_str(block.get("text")) or "")
            elif block.get("type") == "tool_use":
                calls.append(
                    ToolCall(
                        as_str(block.get("name")) or "", block.get("input"), as_str(block.get("id"))
                    )
                )
        n.output_text = "".join(texts)
        n.output_tool_calls = calls
        n.finish_reason = as_str(data.get("stop_reason"))
        n.usage = _usage(data.get("usage"))

    def _read_stream(self, events: list[SSEEvent], n: Normalised) -> None:
        blocks: dict[int, dict[str, Any]] = {}
        usage = Usage()
        for event in events:
            if event.event in (None, "ping"):
                continue  # the SDK ignores events without an event line
            data = as_dict(event.json())
            kind = event.event
            if kind == "error":
                _read_error(data, n)
            elif kind == "message_start":
                message = as_dict(data.get("message"))
                n.model = n.model or as_str(message.get("model"))
                _usage(message.get("usage"), usage)
            elif kind == "content_block_start":
                block = as_dict(data.get("content_block"))
                blocks[as_int(data.get("index"))] = {
                    "type": block.get("type"),
                    "text": as_str(block.get("text")) or "",
                    "id": as_str(block.get("id")),
                    "name": as_str(block.get("name")) or "",
                    "input": block.get("input"),
                    "json": "",
                }
            elif kind == "content_block_delta":
                slot = blocks.setdefault(
                    as_int(data.get("index")),
                    {"type": None, "text": "", "id": None, "name": "", "input": None, "json": ""},
                )
                delta = as_dict(data.get("delta"))
                if delta.get("type") == "text_delta":
                    slot["type"] = slot["type"] or "text"
                    slot["text"] += as_str(delta.get("text")) or ""
                elif delta.get("type") == "input_json_delta":
                    slot["json"] += as_str(delta.get("partial_json")) or ""
            elif kind == "message_delta":
                delta = as_dict(data.get("delta"))
                n.finish_reason = as_str(delta.get("stop_reason")) or n.finish_reason
                _usage(data.get("usage"), usage)
        n.usage = usage
        ordered = [blocks[i] for i in sorted(blocks)]
        n.output_text = "".join(b["text"] for b in ordered if b["type"] == "text")
        n.output_tool_calls = [
            ToolCall(
                b["name"],
                parse_arguments(b["json"]) if b["json"] else (b["input"] if b["input"] else {}),
                b["id"],
            )
            for b in ordered
            if b["type"] == "tool_use"
        ]

    def is_token_event(self, event: SSEEvent) -> bool:
        return event.event == "content_block_delta"

    # --- synthesis ---------------------------------------------------------------------

    def synthesise(
        self, n: Normalised, *, stream: bool, shape: BodyShape = DEFAULT_SHAPE
    ) -> Response:
        model = n.model or "unknown"
        mid = response_id("msg_", shape, model, n.output_text, n.started_at)
        stop = (
            n.finish_reason
            if n.finish_reason in _STOP_REASONS
            else _FROM_NEUTRAL[neutral_finish(n)]
        )
        content: list[dict[str, Any]] = []
        if n.output_text or not n.output_tool_calls:
            content.append({"type": "text", "text": n.output_text})
        for i, call in enumerate(n.output_tool_calls):
            arguments = call.arguments if isinstance(call.arguments, dict) else {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id or synthetic_id("toolu_", mid, i),
                    "name": call.name,
                    "input": arguments,
                }
            )
        message = {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": n.usage.input_tokens, "output_tokens": n.usage.output_tokens},
        }
        if not stream:
            return json_response(200, message, latency_ms=n.latency_ms)

        events: list[tuple[str | None, Any]] = []
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": n.usage.input_tokens, "output_tokens": 0},
        }
        events.append(("message_start", {"type": "message_start", "message": start}))
        events.append(("ping", {"type": "ping"}))
        for index, block in enumerate(content):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {"type": "text", "text": ""},
                        },
                    )
                )
                deltas = [
                    {"type": "text_delta", "text": piece}
                    for piece in text_pieces(block["text"], shape.piece_chars)
                ]
            else:
                events.append(
                    (
                        "content_block_start",
                        {
                            "type": "content_block_start",
                            "index": index,
                            "content_block": {**block, "input": {}},
                        },
                    )
                )
                raw = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
                deltas = [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in text_pieces(raw, max(shape.piece_chars, 24))
                ]
            for delta in deltas:
                events.append(
                    (
                        "content_block_delta",
                        {"type": "content_block_delta", "index": index, "delta": delta},
                    )
                )
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": n.usage.output_tokens},
                },
            )
        )
        events.append(("message_stop", {"type": "message_stop"}))
        return sse_response(events, ttft_ms=n.ttft_ms, latency_ms=n.latency_ms)

    def error_response(self, status: int, message: str, *, code: str | None = None) -> Response:
        kind = code or _ERROR_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        payload = {"type": "error", "error": {"type": kind, "message": message}}
        return json_response(status, payload, headers=[("x-should-retry", "false")])
