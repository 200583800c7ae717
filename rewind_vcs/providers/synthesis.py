"""Building wire-valid response bodies: whole JSON, SSE streams and JSON-array streams.

Every provider's :meth:`~rewind_vcs.providers.base.WireFormat.synthesise`
goes through these helpers, and so does the fake LLM server
(:mod:`rewind_vcs.testing`), so there is one implementation of each wire
format's bodies. A :class:`BodyShape` says what the normalised view leaves
open: how streams are cut, where ids come from, and the options a request may
ask for (OpenAI's separate usage chunk, Gemini's array stream).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from rewind_vcs.providers.sse import encode_sse
from rewind_vcs.store.records import Response


@dataclass(frozen=True)
class BodyShape:
    """How a synthesised body is cut and keyed, beyond what :class:`Normalised` says.

    ``piece_chars``: about how many characters each streamed text delta
    carries (one word a delta when smaller than a word). ``id_seed``: when
    set, response and call ids derive from it instead of from the output (the
    fake LLM seeds them with the request, or with a fresh value for volatile
    ids). ``usage_chunk``: an OpenAI chat stream ends with a chunk that has no
    choices and carries the usage, as ``stream_options.include_usage`` asks;
    otherwise the usage rides on the last chunk. ``sse``: a Gemini stream is
    server-sent events (``alt=sse``); False sends one JSON array element by
    element, as the API does without ``alt=sse``.
    """

    piece_chars: int = 16
    id_seed: str | None = None
    usage_chunk: bool = False
    sse: bool = True


#: the shape replay and the tests use unless told otherwise
DEFAULT_SHAPE = BodyShape()


def spread_chunks(
    sizes: list[int], first_ms: float | None, last_ms: float
) -> list[tuple[float, int]]:
    """Chunk timings for a synthesised body: first piece at ``first_ms``, last at ``last_ms``."""
    if not sizes:
        return []
    last = max(last_ms, 0.0) / 1000.0
    first = min(max(first_ms if first_ms is not None else last_ms, 0.0) / 1000.0, last)
    if len(sizes) == 1:
        return [(last, sizes[0])]
    step = (last - first) / (len(sizes) - 1)
    return [(round(first + i * step, 6), size) for i, size in enumerate(sizes)]


def compact_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(
    status: int,
    payload: Any,
    *,
    reason: str = "",
    headers: Iterable[tuple[str, str]] = (),
    latency_ms: float = 0.0,
) -> Response:
    body = compact_json(payload)
    return Response(
        status=status,
        reason=reason or REASONS.get(status, ""),
        headers=[("content-type", "application/json"), *headers],
        body=body,
        chunks=spread_chunks([len(body)], None, latency_ms),
    )


def sse_response(
    events: list[tuple[str | None, Any]],
    *,
    separator: str = "\n",
    ttft_ms: float | None = None,
    latency_ms: float = 0.0,
    content_type: str = "text/event-stream; charset=utf-8",
) -> Response:
    """A 200 stream of ``(event name or None, JSON payload or raw string)`` events."""
    pieces = [
        encode_sse(
            data if isinstance(data, str) else compact_json(data).decode("utf-8"),
            event,
            separator=separator,
        )
        for event, data in events
    ]
    return Response(
        status=200,
        reason="OK",
        headers=[("content-type", content_type), ("cache-control", "no-cache")],
        body=b"".join(pieces),
        chunks=spread_chunks([len(p) for p in pieces], ttft_ms, latency_ms),
    )


def json_array_response(
    items: list[Any], *, ttft_ms: float | None = None, latency_ms: float = 0.0
) -> Response:
    """A 200 stream that is one JSON array, a chunk per element (Gemini without ``alt=sse``)."""
    pieces = [(b"[" if i == 0 else b",\r\n") + compact_json(item) for i, item in enumerate(items)]
    pieces.append(b"]" if items else b"[]")
    return Response(
        status=200,
        reason="OK",
        headers=[("content-type", "application/json; charset=UTF-8")],
        body=b"".join(pieces),
        chunks=spread_chunks([len(p) for p in pieces], ttft_ms, latency_ms),
    )


def body_pieces(response: Response) -> list[bytes]:
    """The body cut at its recorded chunk sizes (the whole body when they do not add up)."""
    sizes = [size for _, size in response.chunks]
    if sum(sizes) != len(response.body) or not sizes:
        return [response.body]
    out, offset = [], 0
    for size in sizes:
        out.append(response.body[offset : offset + size])
        offset += size
    return out


def text_pieces(text: str, size: int = 16) -> list[str]:
    """Split text into stream deltas of about ``size`` characters; they join back to ``text``.

    A delta starts with the space before its first word, as models' tokens do
    (``"Hello"``, ``" world"``).
    """
    pieces: list[str] = []
    current = ""
    for token in _TOKENS.findall(text):
        if current and len(current) + len(token) > size:
            pieces.append(current)
            current = ""
        current += token
    if current:
        pieces.append(current)
    return pieces


_TOKENS = re.compile(r"\s*\S+|\s+")


def synthetic_id(prefix: str, *parts: Any) -> str:
    """A stable id for a synthesised response, so synthesising twice gives the same bytes."""
    digest = hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()
    return f"{prefix}{digest[:24]}"


def response_id(prefix: str, shape: BodyShape, *parts: Any) -> str:
    """The id of a synthesised response: from the shape's seed when it has one, else from ``parts``."""
    if shape.id_seed is not None:
        return synthetic_id(prefix, shape.id_seed)
    return synthetic_id(prefix, *parts)


REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
