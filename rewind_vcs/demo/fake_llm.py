"""A local fake LLM server that speaks the OpenAI, Anthropic and Gemini wire formats.

Used by rewind's tests, benchmarks and ``rewind demo``: a real HTTP/1.1 server
on 127.0.0.1 (asyncio + h11 in a background thread) with keep-alive, chunked
transfer, TCP_NODELAY on every accepted socket, and SSE streams written chunk
by chunk. Replies come from :mod:`rewind_vcs.demo.scripts`: by default a pure
function of the request (bodies, ids included, are deterministic; only the
headers ``date``, ``x-request-id`` and timings are fresh each time).

Faults are chosen per request, by the request header ``x-fake-fault`` or by
the constructor's ``faults`` script (one entry consumed by each request, in
arrival order; the header wins when both are set):

- ``429`` / ``500``: the provider's error JSON with that status;
- ``reset``: close the socket with a TCP reset, no response;
- ``hang``: never answer (the connection is released on :meth:`FakeLLM.stop`
  or when the client hangs up);
- ``cut``: send the head and a few chunks (half the body when not streaming),
  then drop the connection;
- ``slow``: ``slow_delay`` seconds between chunks (before the body when not
  streaming).

A request that gets ``429``, ``500``, ``reset`` or ``hang`` does not consume
a scripted reply, so a client's retry gets the reply the first try would have.

Manual use: ``python -m rewind_vcs.demo.fake_llm --port 8765``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import enum
import hashlib
import json
import re
import signal
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import h11

from rewind_vcs.demo.scripts import (
    Endpoint,
    Prompt,
    Provider,
    Reply,
    ReplyScript,
    ReplySource,
    count_tokens,
    prompt_from_request,
)

__all__ = ["FAULT_HEADER", "Endpoint", "Fault", "FakeLLM", "Provider", "ReceivedRequest", "main"]

#: Request header that picks a fault for that one request.
FAULT_HEADER = "x-fake-fault"

#: ``created`` timestamp of every deterministic body (2026-01-01T00:00:00Z).
FIXED_CREATED = 1_767_225_600

_MAX_STREAM_PIECES = 48
_READ_SIZE = 65536


class Fault(enum.StrEnum):
    NONE = "none"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    RESET = "reset"
    HANG = "hang"
    CUT = "cut"
    SLOW = "slow"


class ReceivedRequest(NamedTuple):
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str  # path plus query string
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class _Route:
    provider: Provider
    endpoint: Endpoint
    model: str  # from the URL for Gemini, else filled from the body later
    query: dict[str, list[str]]


@dataclass
class _Rendered:
    """A response ready to send: a whole body, or ``chunks`` streamed with chunked transfer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: list[bytes] | None = None


@dataclass
class _Ids:
    """Ids for one response: derived from the request digest, or fresh when volatile."""

    seed: str
    volatile: bool
    counter: int = 0
    created: int = field(init=False)

    def __post_init__(self) -> None:
        self.created = int(time.time()) if self.volatile else FIXED_CREATED

    def make(self, prefix: str, length: int) -> str:
        if self.volatile:
            return prefix + (uuid.uuid4().hex * 2)[:length]
        self.counter += 1
        digest = hashlib.sha256(f"{self.seed}/{prefix}/{self.counter}".encode()).hexdigest()
        return prefix + (digest * 2)[:length]


# ---------------------------------------------------------------------------
# Routing


_GEMINI_PATH = re.compile(
    r"^/(?:v1|v1beta|v1alpha)/(?:models|tunedModels)/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$"
)


def _route(method: str, target: str) -> _Route | None:
    path, _, query_string = target.partition("?")
    query = parse_qs(query_string)
    if method != "POST":
        return None
    match = _GEMINI_PATH.match(path)
    if match:
        endpoint = Endpoint(match.group("method"))
        return _Route(Provider.GEMINI, endpoint, match.group("model"), query)
    bare = path[3:] if path.startswith("/v1/") else path
    routes = {
        "/chat/completions": (Provider.OPENAI, Endpoint.CHAT_COMPLETIONS),
        "/responses": (Provider.OPENAI, Endpoint.RESPONSES),
        "/embeddings": (Provider.OPENAI, Endpoint.EMBEDDINGS),
        "/messages": (Provider.ANTHROPIC, Endpoint.MESSAGES),
    }
    if bare in routes:
        provider, endpoint = routes[bare]
        return _Route(provider, endpoint, "", query)
    return None


# ---------------------------------------------------------------------------
# Wire encoding helpers


def _json(obj: Any, *, pretty: bool = False) -> bytes:
    if pretty:
        return json.dumps(obj, indent=2, ensure_ascii=False).encode()
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _sse_data(obj: Any) -> bytes:
    return b"data: " + _json(obj) + b"\n\n"


def _sse_event(name: str, obj: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + _json(obj) + b"\n\n"


def _text_pieces(text: str) -> list[str]:
    """Split a text into stream deltas: words with their leading space, at most 48."""
    words = re.findall(r"\s*\S+|\s+", text)
    if len(words) <= _MAX_STREAM_PIECES:
        return words
    size = -(-len(words) // _MAX_STREAM_PIECES)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def _json_pieces(arguments: str) -> list[str]:
    """Split a JSON arguments string into a few fragments, as the providers do."""
    if not arguments:
        return []
    size = max(8, -(-len(arguments) // 4))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


@dataclass(frozen=True)
class _Usage:
    input_tokens: int
    output_tokens: int

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens


def _usage_for(reply: Reply, prompt: Prompt) -> _Usage:
    produced = reply.text + "".join(
        json.dumps(dict(c.arguments)) + c.name for c in reply.tool_calls
    )
    return _Usage(
        reply.input_tokens if reply.input_tokens is not None else count_tokens(prompt.all_text),
        reply.output_tokens if reply.output_tokens is not None else count_tokens(produced),
    )


# ---------------------------------------------------------------------------
# OpenAI


def _openai_usage(usage: _Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat_completion(
    model: str, reply: Reply, usage: _Usage, ids: _Ids, stream: bool, include_usage: bool
) -> tuple[bytes, list[bytes] | None]:
    completion_id = ids.make("chatcmpl-", 29)
    calls = [
        {
            "id": call.id or ids.make("call_", 24),
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
        }
        for call in reply.tool_calls
    ]
    finish = "tool_calls" if calls else "stop"
    common = {"id": completion_id, "created": ids.created, "model": model}
    if not stream:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
            "annotations": [],
        }
        if calls:
            message["tool_calls"] = calls
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": ids.created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": _openai_usage(usage),
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        return _json(body, pretty=True), None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {
            **common,
            "object": "chat.completion.chunk",
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            data["usage"] = None
        return _sse_data(data)

    chunks = [chunk({"role": "assistant", "content": "" if not calls else None, "refusal": None})]
    chunks += [chunk({"content": piece}) for piece in _text_pieces(reply.text)]
    for index, call in enumerate(calls):
        head = {"index": index, "id": call["id"], "type": "function"}
        head["function"] = {"name": call["function"]["name"], "arguments": ""}
        chunks.append(chunk({"tool_calls": [head]}))
        for piece in _json_pieces(call["function"]["arguments"]):
            chunks.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    chunks.append(chunk({}, finish))
    if include_usage:
        chunks.append(
            _sse_data(
                {
                    **common,
                    "object": "chat.completion.chunk",
                    "service_tier": "default",
                    "system_fingerprint": "fp_fake0001",
                    "choices": [],
                    "usage": _openai_usage(usage),
                }
            )
        )
    chunks.append(b"data: [DONE]\n\n")
    return b"", chunks


def _responses_usage(usage: _Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total,
    }


def _responses(
    model: str, request: Mapping[str, Any], reply: Reply, usage: _Usage, ids: _Ids, stream: bool
) -> tuple[bytes, list[bytes] | None]:
    response_id = ids.make("resp_", 48)
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append(
            {
                "id": ids.make("msg_", 48),
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
                ],
            }
        )
    for call in reply.tool_calls:
        items.append(
            {
                "id": ids.make("fc_", 48),
                "type": "function_call",
                "status": "completed",
                "arguments": json.dumps(dict(call.arguments)),
                "call_id": call.id or ids.make("call_", 24),
                "name": call.name,
            }
        )

    def envelope(status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "response",
            "created_at": ids.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": bool(request.get("store", True)),
            "temperature": request.get("temperature", 1.0),
            "text": {"format": {"type": "text"}},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": list(request.get("tools") or []),
            "top_p": request.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": _responses_usage(usage) if with_usage else None,
            "user": None,
            "metadata": dict(request.get("metadata") or {}),
        }

    if not stream:
        return _json(envelope("completed", items, True), pretty=True), None

    sequence = 0
    chunks: list[bytes] = []

    def emit(kind: str, **data: Any) -> None:
        nonlocal sequence
        chunks.append(_sse_event(kind, {"type": kind, "sequence_number": sequence, **data}))
        sequence += 1

    emit("response.created", response=envelope("in_progress", [], False))
    emit("response.in_progress", response=envelope("in_progress", [], False))
    for index, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            emit("response.content_part.added", **where, part=part)
            for piece in _text_pieces(text):
                emit("response.output_text.delta", **where, delta=piece, logprobs=[])
            emit("response.output_text.done", **where, text=text, logprobs=[])
            emit("response.content_part.done", **where, part={**part, "text": text})
        else:
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            where = {"item_id": item["id"], "output_index": index}
            for piece in _json_pieces(item["arguments"]):
                emit("response.function_call_arguments.delta", **where, delta=piece)
            emit(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        emit("response.output_item.done", output_index=index, item=item)
    emit("response.completed", response=envelope("completed", items, True))
    return b"", chunks


def _embedding_vector(model: str, text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for a text, rounded to float32."""
    raw = bytearray()
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{model}\0{text}\0{counter}".encode()).digest()
        counter += 1
    ints = struct.unpack(f"<{dimensions}I", bytes(raw[: dimensions * 4]))
    values = [(i / 0xFFFFFFFF) * 2.0 - 1.0 for i in ints]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


def _embeddings(model: str, request: Mapping[str, Any]) -> bytes:
    raw_input = request.get("input", "")
    if isinstance(raw_input, str) or (
        isinstance(raw_input, list) and raw_input and isinstance(raw_input[0], int)
    ):
        inputs: list[Any] = [raw_input]
    else:
        inputs = list(raw_input or [])
    default_size = 3072 if "large" in model else 1536
    dimensions = int(request.get("dimensions") or default_size)
    as_base64 = request.get("encoding_format") == "base64"
    data = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else json.dumps(item)
        tokens += len(item) if isinstance(item, list) else count_tokens(text)
        vector = _embedding_vector(model, text, dimensions)
        encoded: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            if as_base64
            else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return _json(body, pretty=True)


# ---------------------------------------------------------------------------
# Anthropic


def _anthropic_message(
    model: str, reply: Reply, usage: _Usage, ids: _Ids, stream: bool
) -> tuple[bytes, list[bytes] | None]:
    message_id = ids.make("msg_01", 22)
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or ids.make("toolu_01", 22),
                "name": call.name,
                "input": dict(call.arguments),
            }
        )
    stop_reason = "tool_use" if reply.tool_calls else "end_turn"
    full_usage = {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": usage.output_tokens,
        "service_tier": "standard",
    }
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": full_usage,
    }
    if not stream:
        return _json(message), None

    chunks = [
        _sse_event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    **message,
                    "content": [],
                    "stop_reason": None,
                    "usage": {**full_usage, "output_tokens": 1},
                },
            },
        ),
        _sse_event("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(blocks):
        if block["type"] == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in _text_pieces(block["text"])]
        else:
            start = {**block, "input": {}}
            arguments = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [
                {"type": "input_json_delta", "partial_json": p} for p in _json_pieces(arguments)
            ]
        chunks.append(
            _sse_event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
        )
        for delta in deltas:
            chunks.append(
                _sse_event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        chunks.append(
            _sse_event("content_block_stop", {"type": "content_block_stop", "index": index})
        )
    chunks.append(
        _sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {
                    "input_tokens": usage.input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": usage.output_tokens,
                },
            },
        )
    )
    chunks.append(_sse_event("message_stop", {"type": "message_stop"}))
    return b"", chunks


# ---------------------------------------------------------------------------
# Gemini


def _gemini_usage(usage: _Usage, final: bool) -> dict[str, Any]:
    if not final:
        return {
            "promptTokenCount": usage.input_tokens,
            "totalTokenCount": usage.input_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
        }
    return {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": usage.output_tokens,
        "totalTokenCount": usage.total,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.input_tokens}],
    }


def _gemini_content(
    model: str, reply: Reply, usage: _Usage, ids: _Ids, stream: bool, sse: bool
) -> tuple[bytes, list[bytes] | None]:
    response_id = ids.make("", 22)
    call_parts = [
        {"functionCall": {"name": c.name, "args": dict(c.arguments)}} for c in reply.tool_calls
    ]

    def response(parts: list[dict[str, Any]], final: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if final:
            candidate["finishReason"] = "STOP"
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": _gemini_usage(usage, final),
            "modelVersion": model,
            "responseId": response_id,
        }

    if not stream:
        parts = ([{"text": reply.text}] if reply.text else []) + call_parts
        return _json(response(parts, True), pretty=True), None

    pieces = _text_pieces(reply.text)
    bodies = [response([{"text": piece}], False) for piece in pieces]
    if call_parts:
        bodies.append(response(call_parts, True))
    elif bodies:
        bodies[-1] = response([{"text": pieces[-1]}], True)
    else:
        bodies.append(response([{"text": ""}], True))
    if sse:
        return b"", [b"data: " + _json(b) + b"\r\n\r\n" for b in bodies]
    # Without alt=sse the stream is one JSON array, sent element by element.
    chunks = []
    for index, item in enumerate(bodies):
        chunks.append((b"[" if index == 0 else b",\r\n") + _json(item, pretty=True))
    chunks.append(b"]")
    return b"", chunks


# ---------------------------------------------------------------------------
# Errors and headers


_ERROR_TEXT = {
    Provider.OPENAI: {
        429: "Rate limit reached for requests. Please try again in 20ms.",
        500: "The server had an error while processing your request. Sorry about that!",
    },
    Provider.ANTHROPIC: {
        429: "Number of requests has exceeded your per-minute rate limit.",
        500: "Internal server error",
    },
    Provider.GEMINI: {
        429: "Resource has been exhausted (e.g. check quota).",
        500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    },
}


def _error_body(provider: Provider | None, status: int, message: str | None = None) -> bytes:
    """The provider's error JSON (OpenAI's shape when the provider is unknown)."""
    text = message or _ERROR_TEXT[provider or Provider.OPENAI].get(status, "Invalid request.")
    if provider is Provider.ANTHROPIC:
        kinds = {429: "rate_limit_error", 500: "api_error", 404: "not_found_error"}
        kind = kinds.get(status, "invalid_request_error")
        return _json({"type": "error", "error": {"type": kind, "message": text}})
    if provider is Provider.GEMINI:
        statuses = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 404: "NOT_FOUND"}
        state = statuses.get(status, "INVALID_ARGUMENT")
        return _json({"error": {"code": status, "message": text, "status": state}}, pretty=True)
    kinds = {429: "requests", 500: "server_error", 404: "invalid_request_error"}
    codes = {429: "rate_limit_exceeded", 404: "unknown_url"}
    error = {
        "message": text,
        "type": kinds.get(status, "invalid_request_error"),
        "param": None,
        "code": codes.get(status),
    }
    return _json({"error": error}, pretty=True)


def _volatile_headers(provider: Provider | None, started: float) -> list[tuple[str, str]]:
    request_id = "req_" + uuid.uuid4().hex
    elapsed_ms = str(max(1, int((time.monotonic() - started) * 1000)))
    headers = [
        ("date", formatdate(usegmt=True)),
        ("x-request-id", request_id),
        ("server", "fake-llm"),
    ]
    if provider is Provider.OPENAI:
        headers += [
            ("openai-version", "2020-10-01"),
            ("openai-organization", "fake-org"),
            ("openai-processing-ms", elapsed_ms),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-reset-requests", "6ms"),
        ]
    elif provider is Provider.ANTHROPIC:
        headers += [
            ("request-id", request_id),
            ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000"),
            ("anthropic-ratelimit-requests-limit", "4000"),
            ("anthropic-ratelimit-requests-remaining", "3999"),
        ]
    elif provider is Provider.GEMINI:
        headers += [
            ("server-timing", f"gfet4t7; dur={elapsed_ms}"),
            ("vary", "Origin, X-Origin, Referer"),
            ("x-content-type-options", "nosniff"),
        ]
    return headers


def _json_response(
    status: int, body: bytes, provider: Provider | None, started: float
) -> _Rendered:
    headers = [("content-type", "application/json; charset=utf-8")]
    headers += _volatile_headers(provider, started)
    if status == 429:
        headers += [("retry-after", "1"), ("retry-after-ms", "20")]
    return _Rendered(status, headers, body=body)


# ---------------------------------------------------------------------------
# The server


class _Ending(enum.Enum):
    GRACEFUL = "graceful"  # send what is buffered, then FIN
    DROP = "drop"  # close now, discarding anything unsent
    RESET = "reset"  # close with a TCP reset


async def _close(writer: asyncio.StreamWriter, ending: _Ending) -> None:
    if ending is _Ending.GRACEFUL:
        writer.close()
        try:
            await writer.wait_closed()
            return
        except (ConnectionError, asyncio.CancelledError):
            ending = _Ending.DROP
    sock = writer.get_extra_info("socket")
    if ending is _Ending.RESET and sock is not None and sock.fileno() != -1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FakeLLM:
    """The fake provider server. ``with FakeLLM() as fake: ...`` or ``start()``/``stop()``.

    ``reply`` scripts the replies (see :mod:`rewind_vcs.demo.scripts`);
    ``faults`` is a list of :class:`Fault` (or their values, or None for no
    fault) consumed one per request; ``chunk_delay`` is the pause between
    streamed chunks; ``slow_delay`` that of the ``slow`` fault; ``cut_after``
    how many chunks ``cut`` sends; ``volatile_ids`` makes response ids and
    ``created`` fresh each time, as a real provider's are.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        reply: ReplyScript | None = None,
        faults: Iterable[Fault | str | None] = (),
        chunk_delay: float = 0.0,
        slow_delay: float = 0.05,
        cut_after: int = 3,
        volatile_ids: bool = False,
    ) -> None:
        self._requested_port = port
        self._replies = ReplySource(reply)
        self._faults = [Fault.NONE if f is None else Fault(f) for f in faults]
        self.chunk_delay = chunk_delay
        self.slow_delay = slow_delay
        self.cut_after = cut_after
        self.volatile_ids = volatile_ids
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._errors: list[Exception] = []
        self._connections_accepted = 0
        self._sock: socket.socket | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task] = set()

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> FakeLLM:
        if self._thread is not None:
            raise RuntimeError("FakeLLM is already running")
        sock = socket.create_server(("127.0.0.1", self._requested_port), backlog=128)
        sock.setblocking(False)
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run, name=f"fake-llm:{self._port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeLLM did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("FakeLLM failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Close the listener and every connection (hung ones included), then join the thread."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop closed in between: nothing left to stop
        thread.join(10)
        self._thread = None
        self._loop = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests look at --------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a path."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def base_url_env(self) -> dict[str, str]:
        """The SDKs' base-URL variables pointing at this server (for a child process)."""
        return {
            "OPENAI_BASE_URL": self.openai_base_url,
            "ANTHROPIC_BASE_URL": self.url,
            "GOOGLE_GEMINI_BASE_URL": self.url,
        }

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def errors(self) -> list[Exception]:
        """Exceptions raised while building replies (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    @property
    def connections_accepted(self) -> int:
        return self._connections_accepted

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- the event loop thread -------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start() when it happens during start-up
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, sock=self._sock)
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections_accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h11.Connection(h11.SERVER)
        ending = _Ending.GRACEFUL
        try:
            while True:
                received = await self._read_request(conn, reader)
                if received is None:
                    break
                keep_open, reset = await self._respond(conn, reader, writer, received)
                if reset:
                    ending = _Ending.RESET
                if not keep_open or conn.our_state is not h11.DONE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.ProtocolError:
                    break
        except asyncio.CancelledError:
            ending = _Ending.DROP  # stop(): close now, whatever the connection was doing
        except (ConnectionError, h11.ProtocolError):
            pass
        try:
            await _close(writer, ending)
        finally:
            self._tasks.discard(task)

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> ReceivedRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(_READ_SIZE))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                received = ReceivedRequest(
                    method=head.method.decode(),
                    path=head.target.decode(),
                    headers={k.decode().lower(): v.decode("latin-1") for k, v in head.headers},
                    body=bytes(body),
                )
                with self._lock:
                    self._requests.append(received)
                return received
            else:  # ConnectionClosed or PAUSED
                return None

    def _next_fault(self, received: ReceivedRequest) -> Fault | str:
        with self._lock:
            scripted = self._faults.pop(0) if self._faults else Fault.NONE
        asked = received.headers.get(FAULT_HEADER, "").strip().lower()
        if not asked:
            return scripted
        try:
            return Fault(asked)
        except ValueError:
            return asked  # unknown: answered with a 400 naming it

    async def _respond(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        received: ReceivedRequest,
    ) -> tuple[bool, bool]:
        """Answer one request. Returns (keep the connection open, reset it)."""
        started = time.monotonic()
        fault = self._next_fault(received)
        route = _route(received.method, received.path)
        provider = route.provider if route else None
        if not isinstance(fault, Fault):
            message = f"unknown {FAULT_HEADER} value {fault!r}; use one of " + ", ".join(
                f.value for f in Fault
            )
            rendered = _json_response(400, _error_body(provider, 400, message), provider, started)
            return await self._send(conn, writer, rendered, Fault.NONE), False
        if fault is Fault.RESET:
            return False, True
        if fault is Fault.HANG:
            while await reader.read(_READ_SIZE):
                pass  # hold the request unanswered until the client hangs up or stop()
            return False, False
        if fault in (Fault.RATE_LIMIT, Fault.SERVER_ERROR):
            status = int(fault.value)
            rendered = _json_response(status, _error_body(provider, status), provider, started)
            return await self._send(conn, writer, rendered, Fault.NONE), False
        try:
            rendered = self._render(route, received, started)
        except Exception as exc:  # a failing reply script, or a request the readers choke on
            with self._lock:
                self._errors.append(exc)
            message = f"the fake LLM could not build a reply: {exc!r}"
            rendered = _json_response(500, _error_body(provider, 500, message), provider, started)
            fault = Fault.NONE
        return await self._send(conn, writer, rendered, fault), False

    def _render(self, route: _Route | None, received: ReceivedRequest, started: float) -> _Rendered:
        if route is None:
            status = 404 if received.method == "POST" else 405
            message = f"no fake endpoint for {received.method} {received.path}"
            return _json_response(status, _error_body(None, status, message), None, started)
        try:
            body = json.loads(received.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            message = "the request body is not a JSON object"
            rendered = _error_body(route.provider, 400, message)
            return _json_response(400, rendered, route.provider, started)
        model = route.model or str(body.get("model") or "unknown-model")
        ids = _Ids(
            hashlib.sha256(received.path.encode() + b"\0" + received.body).hexdigest(),
            self.volatile_ids,
        )
        if route.endpoint is Endpoint.EMBEDDINGS:
            return _json_response(200, _embeddings(model, body), route.provider, started)
        prompt = prompt_from_request(route.endpoint, body, model)
        reply = self._replies.reply_for(route.provider, route.endpoint, body, prompt)
        usage = _usage_for(reply, prompt)
        stream = bool(body.get("stream"))
        if route.endpoint is Endpoint.CHAT_COMPLETIONS:
            options = body.get("stream_options") or {}
            include_usage = (
                bool(options.get("include_usage")) if isinstance(options, dict) else False
            )
            whole, chunks = _chat_completion(model, reply, usage, ids, stream, include_usage)
        elif route.endpoint is Endpoint.RESPONSES:
            whole, chunks = _responses(model, body, reply, usage, ids, stream)
        elif route.endpoint is Endpoint.MESSAGES:
            whole, chunks = _anthropic_message(model, reply, usage, ids, stream)
        else:
            stream = route.endpoint is Endpoint.STREAM_GENERATE_CONTENT
            sse = route.query.get("alt") == ["sse"]
            whole, chunks = _gemini_content(model, reply, usage, ids, stream, sse)
            if stream and not sse:
                headers = [("content-type", "application/json; charset=UTF-8")]
                headers += _volatile_headers(route.provider, started)
                return _Rendered(200, headers, chunks=chunks)
        if chunks is None:
            return _json_response(200, whole, route.provider, started)
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
        ]
        headers += _volatile_headers(route.provider, started)
        return _Rendered(200, headers, chunks=chunks)

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, rendered: _Rendered, fault: Fault
    ) -> bool:
        """Write a response; returns False when the connection must close (a cut)."""
        if rendered.chunks is None:
            if fault is Fault.SLOW:
                await asyncio.sleep(self.slow_delay)
            headers = rendered.headers + [("content-length", str(len(rendered.body)))]
            head = conn.send(h11.Response(status_code=rendered.status, headers=headers))
            if fault is Fault.CUT:
                writer.write(
                    head + conn.send(h11.Data(data=rendered.body[: len(rendered.body) // 2]))
                )
                await writer.drain()
                return False
            writer.write(
                head + conn.send(h11.Data(data=rendered.body)) + conn.send(h11.EndOfMessage())
            )
            await writer.drain()
            return True
        headers = rendered.headers + [("transfer-encoding", "chunked")]
        writer.write(conn.send(h11.Response(status_code=rendered.status, headers=headers)))
        await writer.drain()
        chunks = rendered.chunks
        cut_at = max(0, min(self.cut_after, len(chunks) - 1)) if fault is Fault.CUT else None
        delay = self.slow_delay if fault is Fault.SLOW else self.chunk_delay
        for index, chunk in enumerate(chunks):
            if index == cut_at:
                return False
            if index and delay:
                await asyncio.sleep(delay)
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()
        if cut_at is not None:
            return False
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m rewind_vcs.demo.fake_llm",
        description="A local fake LLM server speaking the OpenAI, Anthropic and Gemini wire formats.",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.02, help="seconds between streamed chunks"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=[f.value for f in Fault],
        help="a fault for the next request (repeat for a script, consumed in order)",
    )
    args = parser.parse_args(argv)
    fake = FakeLLM(port=args.port, chunk_delay=args.chunk_delay, faults=args.fault)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    fake.start()
    print(f"fake LLM listening on {fake.url}")
    for name, value in fake.base_url_env().items():
        print(f"  export {name}={value}")
    print(
        f"pick a fault per request with the header '{FAULT_HEADER}: 429|500|reset|hang|cut|slow'",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
