"""Any other HTTP exchange: a tool's API recorded with --record-host, or an
endpoint of an LLM host that no provider module models (``/v1/models``, file uploads).

Matched on method, path (query parameters sorted) and body: JSON compared as
data, anything else by its SHA-256.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from rewind_vcs.providers.base import (
    Message,
    Normalised,
    WireFormat,
    body_digest,
    body_text,
    load_json,
)
from rewind_vcs.providers.sse import SSEEvent
from rewind_vcs.providers.synthesis import DEFAULT_SHAPE, BodyShape, json_response
from rewind_vcs.store.records import Request, Response, StepKind


def canonical_path(path: str) -> str:
    """The path with its query parameters in sorted order."""
    parts = urlsplit(path)
    query = sorted(parse_qsl(parts.query, keep_blank_values=True))
    return parts.path + (f"?{urlencode(query)}" if query else "")


class GenericProvider(WireFormat):
    """Raw HTTP. ``kind`` is TOOL for a recorded tool host, HTTP for an unmodelled
    endpoint of an LLM host, and ``label`` names that host's provider in the view."""

    name = "generic"

    def __init__(self, kind: StepKind = StepKind.TOOL, label: str | None = None) -> None:
        self.kind = kind
        self.label = label or self.name

    def recognises(self, host: str, path: str) -> bool:
        return True

    def normalise_request(self, request: Request) -> Normalised:
        n = Normalised(
            provider=self.label,
            endpoint="generic",
            kind=self.kind,
            method=request.method,
            path=request.path,
        )
        text = body_text(request.body)
        if text:
            n.messages = [Message("user", text)]
        return n

    def canonical_request(self, request: Request) -> dict[str, Any]:
        body = load_json(request.body)
        return {
            "method": request.method.upper(),
            "path": canonical_path(request.path),
            "body": body if body is not None or not request.body else body_digest(request.body),
        }

    def read_response(self, response: Response, n: Normalised) -> None:
        n.stream = response.is_stream
        n.output_text = body_text(response.body) or ""

    def is_token_event(self, event: SSEEvent) -> bool:
        return True

    def synthesise(
        self, n: Normalised, *, stream: bool, shape: BodyShape = DEFAULT_SHAPE
    ) -> Response:
        body = n.output_text.encode("utf-8")
        kind = "application/json" if load_json(body) is not None else "text/plain; charset=utf-8"
        return Response(
            status=n.http_status or 200,
            reason="OK" if not n.http_status or n.http_status < 400 else "",
            headers=[("content-type", kind)],
            body=body,
            chunks=[(round(n.latency_ms / 1000.0, 6), len(body))] if body else [],
        )

    def error_response(self, status: int, message: str, *, code: str | None = None) -> Response:
        payload: dict[str, Any] = {"error": {"message": message}}
        if code:
            payload["error"]["code"] = code
        return json_response(status, payload, headers=[("x-should-retry", "false")])
