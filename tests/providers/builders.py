"""Building recorded exchanges from wire bytes, as the proxy would capture them."""

from __future__ import annotations

import json
from typing import Any

from rewind_vcs.store.records import Exchange, Request, Response, TransportError

SDK_HEADERS = [
    ("content-type", "application/json"),
    ("user-agent", "OpenAI/Python 3.54.0"),
    ("x-stainless-lang", "python"),
    ("x-stainless-retry-count", "0"),
    ("x-stainless-read-timeout", "600"),
]


def request(
    path: str,
    body: Any,
    *,
    host: str = "api.openai.com",
    method: str = "POST",
    headers: list[tuple[str, str]] | None = None,
) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request(
        method=method,
        scheme="https",
        host=host,
        path=path,
        headers=list(SDK_HEADERS if headers is None else headers),
        body=raw,
    )


def sse_body(*events: Any, eol: str = "\n") -> bytes:
    """``data:`` events; an item ``(name, payload)`` adds an ``event:`` line."""
    out = []
    for item in events:
        name, payload = item if isinstance(item, tuple) else (None, item)
        data = payload if isinstance(payload, str) else json.dumps(payload)
        lines = ([f"event: {name}"] if name else []) + [f"data: {data}"]
        out.append(eol.join(lines) + eol + eol)
    return "".join(out).encode()


def response(
    body: Any,
    *,
    status: int = 200,
    stream: bool = False,
    chunk_times: list[float] | None = None,
    error: TransportError | None = None,
    error_detail: str = "",
) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    content_type = "text/event-stream; charset=utf-8" if stream else "application/json"
    return Response(
        status=status,
        reason="",
        headers=[("content-type", content_type)],
        body=raw,
        chunks=chunks_for(raw, chunk_times) if chunk_times else [(0.05, len(raw))] if raw else [],
        error=error,
        error_detail=error_detail,
    )


def chunks_for(body: bytes, times: list[float]) -> list[tuple[float, int]]:
    """Split ``body`` at its SSE event boundaries, one chunk per event, at ``times``."""
    pieces = [p + b"\n\n" for p in body.split(b"\n\n") if p]
    assert b"".join(pieces) == body and len(pieces) == len(times), (len(pieces), len(times))
    return [(t, len(p)) for t, p in zip(times, pieces, strict=True)]


def exchange(
    req: Request, resp: Response, *, started_at: float = 1_750_000_000.0, duration: float = 0.8
) -> Exchange:
    return Exchange(request=req, response=resp, started_at=started_at, duration=duration)
