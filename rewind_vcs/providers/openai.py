"""OpenAI: chat completions, the Responses API and embeddings.

Also serves every OpenAI-compatible server (vLLM, Ollama, OpenRouter, LiteLLM,
Azure deployments): they are recognised by the path suffix, whatever the prefix.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any
from urllib.parse import urlsplit

from rewind_vcs.providers.base import (
    IdMap,
    Message,
    Normalised,
    Provider,
    ToolCall,
    as_dict,
    as_int,
    as_list,
    as_str,
    body_digest,
    dump_arguments,
    json_response,
    load_json,
    looks_like_stream,
    neutral_finish,
    parse_arguments,
    split_system,
    sse_response,
    stream_events,
    synthetic_id,
    text_pieces,
    tool_definition,
)
from rewind_vcs.providers.sse import SSEEvent
from rewind_vcs.store.records import Request, Response, Usage

CHAT = "chat.completions"
RESPONSES = "responses"
EMBEDDINGS = "embeddings"

_SUFFIXES = (("/chat/completions", CHAT), ("/responses", RESPONSES), ("/embeddings", EMBEDDINGS))

#: request fields that never change the answer: who asks, bookkeeping, transport options
VOLATILE = frozenset(
    {
        "user",
        "metadata",
        "stream_options",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "store",
    }
)

_CHAT_STRUCTURE = frozenset({"model", "messages", "tools", "functions", "stream"})
_RESPONSES_STRUCTURE = frozenset({"model", "input", "instructions", "tools", "stream"})
_EMBEDDINGS_STRUCTURE = frozenset({"model", "input"})

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


def endpoint_of(path: str) -> str | None:
    route = urlsplit(path).path.rstrip("/")
    for suffix, endpoint in _SUFFIXES:
        if route.endswith(suffix):
            return endpoint
    return None


def _content_text(content: Any) -> str:
    """Chat or Responses content (a string or a list of parts) as text."""
    if isinstance(content, str):
        return content
    texts = []
    for part in as_list(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        part = as_dict(part)
        kind = as_str(part.get("type")) or ""
        text = as_str(part.get("text"))
        if text is None:
            text = as_str(part.get("refusal"))
        if text is not None:
            texts.append(text)
        elif kind:
            texts.append(f"[{kind.removeprefix('input_')}]")
    return "\n".join(texts)


def _role(value: Any) -> str:
    if value in ("system", "developer"):
        return "system"
    if value in ("tool", "function"):
        return "tool"
    if value == "assistant":
        return "assistant"
    return "user"


def _params(body: dict[str, Any], structure: frozenset[str]) -> dict[str, Any]:
    params = {k: v for k, v in body.items() if k not in structure and k not in VOLATILE}
    for alias in ("max_completion_tokens", "max_output_tokens"):
        if alias in params and "max_tokens" not in params:
            params["max_tokens"] = params.pop(alias)
    return params


def _usage(data: dict[str, Any]) -> Usage:
    usage = as_dict(data)
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output_tokens=as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
    )


def _read_error(error: Any, n: Normalised) -> None:
    if isinstance(error, dict):
        n.error_message = as_str(error.get("message")) or n.error_message or "error"
        code = error.get("code") or error.get("type")
        n.error_code = str(code) if code not in (None, "") else None
    elif isinstance(error, str):
        n.error_message = error


def _decode_embedding(value: Any) -> list[float]:
    if isinstance(value, list):
        return [float(x) for x in value if isinstance(x, int | float) and not isinstance(x, bool)]
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            return []
        usable = len(raw) - len(raw) % 4
        return list(struct.unpack(f"<{usable // 4}f", raw[:usable]))
    return []


def _encode_embedding(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


class OpenAIProvider(Provider):
    name = "openai"
    hosts = ("api.openai.com",)

    def recognises(self, host: str, path: str) -> bool:
        return endpoint_of(path) is not None

    # --- requests ----------------------------------------------------------------------

    def normalise_request(self, request: Request) -> Normalised:
        body = as_dict(load_json(request.body))
        endpoint = endpoint_of(request.path) or "generic"
        n = Normalised(
            provider=self.name,
            endpoint=endpoint,
            model=as_str(body.get("model")),
            stream=body.get("stream") is True,
            method=request.method,
            path=request.path,
        )
        if endpoint == CHAT:
            self._chat_request(body, n)
        elif endpoint == RESPONSES:
            self._responses_request(body, n)
        elif endpoint == EMBEDDINGS:
            inputs = body.get("input")
            items = inputs if isinstance(inputs, list) and not _is_token_list(inputs) else [inputs]
            n.messages = [
                Message("user", item if isinstance(item, str) else str(item))
                for item in items
                if item is not None
            ]
            n.params = _params(body, _EMBEDDINGS_STRUCTURE)
        return n

    def _chat_request(self, body: dict[str, Any], n: Normalised) -> None:
        messages = []
        for raw in as_list(body.get("messages")):
            m = as_dict(raw)
            calls = [
                ToolCall(
                    name=as_str(as_dict(tc.get("function")).get("name")) or "",
                    arguments=parse_arguments(as_dict(tc.get("function")).get("arguments")),
                    id=as_str(tc.get("id")),
                )
                for tc in map(as_dict, as_list(m.get("tool_calls")))
                if tc
            ]
            legacy = as_dict(m.get("function_call"))
            if legacy:
                calls.append(
                    ToolCall(
                        as_str(legacy.get("name")) or "", parse_arguments(legacy.get("arguments"))
                    )
                )
            messages.append(
                Message(
                    role=_role(m.get("role")),
                    content=_content_text(m.get("content")),
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
            tools.append(
                tool_definition(fn.get("name"), fn.get("description"), fn.get("parameters"))
            )
        n.tools = tools
        n.params = _params(body, _CHAT_STRUCTURE)

    def _responses_request(self, body: dict[str, Any], n: Normalised) -> None:
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
                        output if isinstance(output, str) else _content_text(output),
                        tool_call_id=as_str(item.get("call_id")),
                    )
                )
            elif "role" in item and kind in (None, "message"):
                messages.append(
                    Message(_role(item.get("role")), _content_text(item.get("content")))
                )
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
        n.params = _params(body, _RESPONSES_STRUCTURE)

    def canonical_request(self, request: Request) -> dict[str, Any]:
        endpoint = endpoint_of(request.path) or "generic"
        body = load_json(request.body)
        if not isinstance(body, dict):
            return {
                "endpoint": endpoint,
                "body": body if body is not None else body_digest(request.body),
            }
        # freshly parsed, so ours to edit in place
        body = {k: v for k, v in body.items() if k not in VOLATILE}
        ids = IdMap("call")
        if endpoint == CHAT:
            for m in map(as_dict, as_list(body.get("messages"))):
                for tc in map(as_dict, as_list(m.get("tool_calls"))):
                    if "id" in tc:
                        tc["id"] = ids(tc["id"])
                if "tool_call_id" in m:
                    m["tool_call_id"] = ids(m["tool_call_id"])
        elif endpoint == RESPONSES:
            items = IdMap("item")
            for item in map(as_dict, as_list(body.get("input"))):
                if "call_id" in item:
                    item["call_id"] = ids(item["call_id"])
                if "id" in item:
                    item["id"] = items(item["id"])
                item.pop("encrypted_content", None)  # reasoning state, opaque and new each run
            if "previous_response_id" in body:
                body["previous_response_id"] = IdMap("response")(body["previous_response_id"])
        return {"endpoint": endpoint, "body": body}

    # --- responses ---------------------------------------------------------------------

    def read_response(self, response: Response, n: Normalised) -> None:
        if looks_like_stream(response):
            n.stream = True
            events = stream_events(response)
            if n.endpoint == RESPONSES or any(e.event or "" for e in events[:3]):
                self._responses_stream(events, n)
            else:
                self._chat_stream(events, n)
            return
        data = as_dict(load_json(response.body))
        if data.get("error"):
            _read_error(data["error"], n)
            if data.get("object") != "response":
                return
        n.model = n.model or as_str(data.get("model"))
        if data.get("object") == "response" or n.endpoint == RESPONSES:
            self._response_object(data, n)
        elif n.endpoint == EMBEDDINGS or data.get("object") == "list":
            rows = sorted(
                (as_dict(row) for row in as_list(data.get("data"))),
                key=lambda row: as_int(row.get("index")),
            )
            n.output_embeddings = [_decode_embedding(row.get("embedding")) for row in rows]
            n.usage = _usage(data.get("usage"))
        else:
            self._chat_completion(data, n)

    def _chat_completion(self, data: dict[str, Any], n: Normalised) -> None:
        choice = as_dict(next(iter(as_list(data.get("choices"))), None))
        message = as_dict(choice.get("message"))
        n.output_text = as_str(message.get("content")) or as_str(message.get("refusal")) or ""
        calls = []
        for tc in map(as_dict, as_list(message.get("tool_calls"))):
            fn = as_dict(tc.get("function"))
            calls.append(
                ToolCall(
                    as_str(fn.get("name")) or "",
                    parse_arguments(fn.get("arguments")),
                    as_str(tc.get("id")),
                )
            )
        legacy = as_dict(message.get("function_call"))
        if legacy:
            calls.append(
                ToolCall(as_str(legacy.get("name")) or "", parse_arguments(legacy.get("arguments")))
            )
        n.output_tool_calls = calls
        n.finish_reason = as_str(choice.get("finish_reason"))
        n.usage = _usage(data.get("usage"))

    def _chat_stream(self, events: list[SSEEvent], n: Normalised) -> None:
        text: list[str] = []
        refusal: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        for event in events:
            if event.data.startswith("[DONE]"):
                break
            chunk = as_dict(event.json())
            if chunk.get("error"):
                _read_error(chunk["error"], n)
                continue
            n.model = n.model or as_str(chunk.get("model"))
            if isinstance(chunk.get("usage"), dict):
                n.usage = _usage(chunk["usage"])
            for choice in map(as_dict, as_list(chunk.get("choices"))):
                if as_int(choice.get("index")) != 0:
                    continue
                delta = as_dict(choice.get("delta"))
                if as_str(delta.get("content")):
                    text.append(delta["content"])
                if as_str(delta.get("refusal")):
                    refusal.append(delta["refusal"])
                for position, tc in enumerate(map(as_dict, as_list(delta.get("tool_calls")))):
                    index = tc.get("index")
                    slot = calls.setdefault(
                        index if isinstance(index, int) else position,
                        {"id": None, "name": "", "arguments": ""},
                    )
                    fn = as_dict(tc.get("function"))
                    slot["id"] = slot["id"] or as_str(tc.get("id"))
                    slot["name"] = slot["name"] or as_str(fn.get("name")) or ""
                    slot["arguments"] += as_str(fn.get("arguments")) or ""
                legacy = as_dict(delta.get("function_call"))
                if legacy:
                    slot = calls.setdefault(-1, {"id": None, "name": "", "arguments": ""})
                    slot["name"] = slot["name"] or as_str(legacy.get("name")) or ""
                    slot["arguments"] += as_str(legacy.get("arguments")) or ""
                if as_str(choice.get("finish_reason")):
                    n.finish_reason = choice["finish_reason"]
        n.output_text = "".join(text) or "".join(refusal)
        n.output_tool_calls = [
            ToolCall(slot["name"], parse_arguments(slot["arguments"]), slot["id"])
            for _, slot in sorted(calls.items(), key=lambda kv: kv[0] if kv[0] >= 0 else math.inf)
        ]

    def _response_object(self, data: dict[str, Any], n: Normalised) -> None:
        n.model = n.model or as_str(data.get("model"))
        texts = []
        calls = []
        for item in map(as_dict, as_list(data.get("output"))):
            if item.get("type") == "message":
                for part in map(as_dict, as_list(item.get("content"))):
                    if part.get("type") == "output_text" and as_str(part.get("text")) is not None:
                        texts.append(part["text"])
                    elif part.get("type") == "refusal" and as_str(part.get("refusal")):
                        texts.append(part["refusal"])
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
            n.usage = _usage(data["usage"])
        status = as_str(data.get("status"))
        reason = as_str(as_dict(data.get("incomplete_details")).get("reason"))
        n.finish_reason = reason if status == "incomplete" and reason else status
        if status == "failed" or data.get("error"):
            _read_error(data.get("error") or {"message": "response failed"}, n)

    def _responses_stream(self, events: list[SSEEvent], n: Normalised) -> None:
        texts: dict[tuple[int, int], str] = {}
        calls: dict[int, dict[str, Any]] = {}
        final: dict[str, Any] | None = None
        for event in events:
            data = as_dict(event.json())
            kind = as_str(data.get("type")) or event.event or ""
            if kind in ("response.completed", "response.incomplete", "response.failed"):
                final = as_dict(data.get("response"))
            elif kind in ("response.created", "response.in_progress"):
                n.model = n.model or as_str(as_dict(data.get("response")).get("model"))
            elif kind == "response.output_text.delta":
                key = (as_int(data.get("output_index")), as_int(data.get("content_index")))
                texts[key] = texts.get(key, "") + (as_str(data.get("delta")) or "")
            elif kind == "response.output_item.added" or kind == "response.output_item.done":
                item = as_dict(data.get("item"))
                if item.get("type") == "function_call":
                    slot = calls.setdefault(
                        as_int(data.get("output_index")), {"id": None, "name": "", "arguments": ""}
                    )
                    slot["id"] = as_str(item.get("call_id")) or slot["id"]
                    slot["name"] = as_str(item.get("name")) or slot["name"]
                    if kind.endswith(".done") and as_str(item.get("arguments")) is not None:
                        slot["arguments"] = item["arguments"]
            elif kind == "response.function_call_arguments.delta":
                slot = calls.setdefault(
                    as_int(data.get("output_index")), {"id": None, "name": "", "arguments": ""}
                )
                slot["arguments"] += as_str(data.get("delta")) or ""
            elif kind == "error":
                _read_error(data.get("error") if isinstance(data.get("error"), dict) else data, n)
        if final:
            self._response_object(final, n)
            return
        n.output_text = "".join(texts[key] for key in sorted(texts))
        n.output_tool_calls = [
            ToolCall(slot["name"], parse_arguments(slot["arguments"]), slot["id"])
            for _, slot in sorted(calls.items())
        ]

    def is_token_event(self, event: SSEEvent) -> bool:
        data = as_dict(event.json())
        kind = data.get("type")
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            return True
        for choice in map(as_dict, as_list(data.get("choices"))):
            delta = as_dict(choice.get("delta"))
            if delta.get("content") or delta.get("tool_calls") or delta.get("refusal"):
                return True
        return False

    # --- synthesis ---------------------------------------------------------------------

    def synthesise(self, n: Normalised, *, stream: bool) -> Response:
        if n.endpoint == EMBEDDINGS:
            return self._embeddings_response(n)
        if n.endpoint == RESPONSES:
            return self._responses_response(n, stream)
        return self._chat_response(n, stream)

    def _chat_response(self, n: Normalised, stream: bool) -> Response:
        model = n.model or "unknown"
        rid = synthetic_id("chatcmpl-", model, n.output_text, n.started_at)
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
                        "function": {
                            "name": call.name,
                            "arguments": dump_arguments(call.arguments),
                        },
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

        def chunk(delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict:
            return {
                "id": rid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": None,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
                **extra,
            }

        events: list[tuple[str | None, Any]] = [
            (None, chunk({"role": "assistant", "content": "", "refusal": None}))
        ]
        events += [(None, chunk({"content": piece})) for piece in text_pieces(n.output_text)]
        for index, (call_id, call) in enumerate(calls):
            head = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            events.append((None, chunk({"tool_calls": [head]})))
            for piece in text_pieces(dump_arguments(call.arguments), 24):
                events.append(
                    (
                        None,
                        chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    )
                )
        # Usage rides on the last chunk (as vLLM sends it) rather than on an extra
        # chunk with no choices, which clients that did not ask for usage may not expect.
        events.append((None, chunk({}, finish, usage=usage)))
        events.append((None, "[DONE]"))
        return sse_response(events, ttft_ms=n.ttft_ms, latency_ms=n.latency_ms)

    def _responses_response(self, n: Normalised, stream: bool) -> Response:
        model = n.model or "unknown"
        rid = synthetic_id("resp_", model, n.output_text, n.started_at)
        finish = neutral_finish(n)
        output: list[dict[str, Any]] = []
        if n.output_text or not n.output_tool_calls:
            output.append(
                {
                    "id": synthetic_id("msg_", rid),
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {
                            "type": "output_text",
                            "text": n.output_text,
                            "annotations": [],
                            "logprobs": [],
                        }
                    ],
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
        incomplete = finish == "length"
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

        events: list[tuple[str | None, Any]] = []

        def emit(kind: str, **fields: Any) -> None:
            events.append((kind, {"type": kind, "sequence_number": len(events), **fields}))

        start = {
            **response,
            "status": "in_progress",
            "output": [],
            "usage": None,
            "incomplete_details": None,
        }
        emit("response.created", response=start)
        emit("response.in_progress", response=start)
        for index, item in enumerate(output):
            if item["type"] == "message":
                part = item["content"][0]
                emit(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "content": []},
                )
                emit(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part={**part, "text": ""},
                )
                for piece in text_pieces(part["text"]):
                    emit(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=piece,
                        logprobs=[],
                    )
                emit(
                    "response.output_text.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                )
                emit(
                    "response.content_part.done",
                    item_id=item["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            else:
                emit(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "status": "in_progress", "arguments": ""},
                )
                for piece in text_pieces(item["arguments"], 24):
                    emit(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=piece,
                    )
                emit(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            emit("response.output_item.done", output_index=index, item=item)
        emit("response.incomplete" if incomplete else "response.completed", response=response)
        return sse_response(events, ttft_ms=n.ttft_ms, latency_ms=n.latency_ms)

    def _embeddings_response(self, n: Normalised) -> Response:
        as_base64 = n.params.get("encoding_format") == "base64"
        payload = {
            "object": "list",
            "data": [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": _encode_embedding(vector) if as_base64 else vector,
                }
                for i, vector in enumerate(n.output_embeddings)
            ],
            "model": n.model or "unknown",
            "usage": {"prompt_tokens": n.usage.input_tokens, "total_tokens": n.usage.total},
        }
        return json_response(200, payload, latency_ms=n.latency_ms)

    def error_response(self, status: int, message: str, *, code: str | None = None) -> Response:
        kind, default_code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        payload = {
            "error": {"message": message, "type": kind, "param": None, "code": code or default_code}
        }
        return json_response(status, payload, headers=[("x-should-retry", "false")])


def _is_token_list(value: list[Any]) -> bool:
    return bool(value) and all(isinstance(x, int) for x in value)
