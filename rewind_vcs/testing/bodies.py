"""The fake LLM's responses, built by the providers themselves.

A request is routed and read with the providers' own code (:func:`route`,
:meth:`WireFormat.normalise_request`); the reply is written as a normalised
output and turned into wire bytes by the provider's
:meth:`~rewind_vcs.providers.base.WireFormat.synthesise` (bodies, plain and
streamed) or :meth:`~rewind_vcs.providers.base.WireFormat.error_response`
(error bodies). Only what a real server adds around a body lives here: the
headers a provider sends (fresh each time), deterministic embedding vectors,
and the ids' seed.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, urlsplit

from rewind_vcs.providers.base import Normalised, ToolCall, WireFormat
from rewind_vcs.providers.generic import GenericProvider
from rewind_vcs.providers.hosts import ProviderName
from rewind_vcs.providers.registry import PROVIDERS, detect
from rewind_vcs.providers.synthesis import BodyShape, body_pieces
from rewind_vcs.store.records import Request, Response, Usage
from rewind_vcs.testing.scripts import Endpoint, Prompt, Reply, count_tokens

#: ``created`` timestamp of every deterministic body (2026-01-01T00:00:00Z).
FIXED_CREATED = 1_767_225_600

#: a stream carries at most about this many text deltas
MAX_STREAM_PIECES = 48


@dataclass
class Rendered:
    """A response ready to send: a whole body, or ``chunks`` streamed with chunked transfer."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    chunks: list[bytes] | None = None


@dataclass(frozen=True)
class Route:
    """Which provider a request is for, as the providers' registry recognises its path."""

    provider: ProviderName
    wire: WireFormat = field(compare=False)


def route(method: str, target: str) -> Route | None:
    """The provider serving a POST to ``target`` (path and query), None for anything else."""
    if method != "POST":
        return None
    wire = detect(Request("POST", "http", "127.0.0.1", target))
    if isinstance(wire, GenericProvider):
        return None
    return Route(ProviderName(wire.name), wire)


def reply_seed(target: str, body: bytes, volatile: bool) -> tuple[str, float]:
    """``(id seed, created time)`` of a response: from the request, or fresh when volatile."""
    if volatile:
        return uuid.uuid4().hex, float(int(time.time()))
    return hashlib.sha256(target.encode() + b"\0" + body).hexdigest(), float(FIXED_CREATED)


def request_view(found: Route, target: str, raw: bytes) -> Normalised:
    return found.wire.normalise_request(Request("POST", "http", "127.0.0.1", target, [], raw))


def reply_response(
    found: Route,
    n: Normalised,
    body: dict[str, Any],
    reply: Reply,
    prompt: Prompt,
    *,
    target: str,
    seed: str,
    created: float,
) -> Response:
    """The wire response carrying ``reply``, as the provider writes it."""
    produced = reply.text + "".join(
        json.dumps(dict(c.arguments)) + c.name for c in reply.tool_calls
    )
    usage = Usage(
        reply.input_tokens if reply.input_tokens is not None else count_tokens(prompt.all_text),
        reply.output_tokens if reply.output_tokens is not None else count_tokens(produced),
    )
    out = Normalised(
        provider=found.provider.value,
        endpoint=n.endpoint,
        model=prompt.model,
        output_text=reply.text,
        output_tool_calls=[
            ToolCall(call.name, dict(call.arguments), call.id or None) for call in reply.tool_calls
        ],
        usage=usage,
        params=n.params,
        started_at=created,
    )
    options = body.get("stream_options")
    words = len(reply.text.split())
    shape = BodyShape(
        piece_chars=1 + len(reply.text) // MAX_STREAM_PIECES if words > MAX_STREAM_PIECES else 1,
        id_seed=seed,
        usage_chunk=isinstance(options, dict) and options.get("include_usage") is True,
        sse=parse_qs(urlsplit(target).query).get("alt") == ["sse"],
    )
    return found.wire.synthesise(out, stream=n.stream, shape=shape)


def embeddings_response(found: Route, n: Normalised, body: dict[str, Any]) -> Response:
    """Deterministic unit vectors, one per input, in the encoding the request asks."""
    model = n.model or "unknown-model"
    raw_input = body.get("input", "")
    if isinstance(raw_input, str) or (
        isinstance(raw_input, list) and raw_input and isinstance(raw_input[0], int)
    ):
        inputs: list[Any] = [raw_input]
    else:
        inputs = list(raw_input or [])
    dimensions = int(body.get("dimensions") or (3072 if "large" in model else 1536))
    vectors, tokens = [], 0
    for item in inputs:
        text = item if isinstance(item, str) else json.dumps(item)
        tokens += len(item) if isinstance(item, list) else count_tokens(text)
        vectors.append(embedding_vector(model, text, dimensions))
    out = Normalised(
        provider=found.provider.value,
        endpoint=Endpoint.EMBEDDINGS.value,
        model=model,
        output_embeddings=vectors,
        usage=Usage(tokens, 0),
        params=n.params,
    )
    return found.wire.synthesise(out, stream=False)


def embedding_vector(model: str, text: str, dimensions: int) -> list[float]:
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


def rendered(
    response: Response, provider: ProviderName | None, started: float, *, stream: bool
) -> Rendered:
    """A synthesised response with a real server's headers: a stream is sent a chunk an event."""
    headers = list(response.headers) + volatile_headers(provider, started)
    if stream:
        return Rendered(response.status, headers, chunks=body_pieces(response))
    return Rendered(response.status, headers, body=response.body)


# ---------------------------------------------------------------------------
# Errors and headers

_ERROR_TEXT = {
    ProviderName.OPENAI: {
        429: "Rate limit reached for requests. Please try again in 20ms.",
        500: "The server had an error while processing your request. Sorry about that!",
    },
    ProviderName.ANTHROPIC: {
        429: "Number of requests has exceeded your per-minute rate limit.",
        500: "Internal server error",
    },
    ProviderName.GEMINI: {
        429: "Resource has been exhausted (e.g. check quota).",
        500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    },
}


def error_rendered(
    provider: ProviderName | None, status: int, started: float, message: str | None = None
) -> Rendered:
    """The provider's error JSON (OpenAI's shape when the provider is unknown), with the
    headers a real API sends (``retry-after`` on a 429)."""
    name = provider or ProviderName.OPENAI
    text = message or _ERROR_TEXT[name].get(status, "Invalid request.")
    body = PROVIDERS[name.value].error_response(status, text).body
    headers = [("content-type", "application/json; charset=utf-8")]
    headers += volatile_headers(provider, started)
    if status == 429:
        headers += [("retry-after", "1"), ("retry-after-ms", "20")]
    return Rendered(status, headers, body=body)


def volatile_headers(provider: ProviderName | None, started: float) -> list[tuple[str, str]]:
    """What a real API adds to every response, fresh each time: date, request id, rate limits."""
    request_id = "req_" + uuid.uuid4().hex
    elapsed_ms = str(max(1, int((time.monotonic() - started) * 1000)))
    headers = [
        ("date", formatdate(usegmt=True)),
        ("x-request-id", request_id),
        ("server", "fake-llm"),
    ]
    if provider is ProviderName.OPENAI:
        headers += [
            ("openai-version", "2020-10-01"),
            ("openai-organization", "fake-org"),
            ("openai-processing-ms", elapsed_ms),
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-reset-requests", "6ms"),
        ]
    elif provider is ProviderName.ANTHROPIC:
        headers += [
            ("request-id", request_id),
            ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000"),
            ("anthropic-ratelimit-requests-limit", "4000"),
            ("anthropic-ratelimit-requests-remaining", "3999"),
        ]
    elif provider is ProviderName.GEMINI:
        headers += [
            ("server-timing", f"gfet4t7; dur={elapsed_ms}"),
            ("vary", "Origin, X-Origin, Referer"),
            ("x-content-type-options", "nosniff"),
        ]
    return headers
