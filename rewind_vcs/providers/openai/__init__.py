"""OpenAI: chat completions, the Responses API and embeddings, one module each.

Also serves every OpenAI-compatible server (vLLM, Ollama, OpenRouter, LiteLLM,
Azure deployments): they are recognised by the path suffix, whatever the prefix.
This module picks the endpoint and holds what the three share with the other
providers (recognising, canonical requests, errors);
:mod:`~rewind_vcs.providers.openai.chat`,
:mod:`~rewind_vcs.providers.openai.responses` and
:mod:`~rewind_vcs.providers.openai.embeddings` read and write each format.
"""

from __future__ import annotations

from typing import Any

from rewind_vcs.providers.base import (
    IdMap,
    Normalised,
    WireFormat,
    as_dict,
    as_str,
    editable_body,
    load_json,
    looks_like_stream,
    stream_events,
)
from rewind_vcs.providers.hosts import OPENAI_HOSTS
from rewind_vcs.providers.openai import chat, embeddings, responses
from rewind_vcs.providers.openai.common import (
    CHAT,
    EMBEDDINGS,
    RESPONSES,
    VOLATILE,
    endpoint_of,
    read_error,
)
from rewind_vcs.providers.sse import SSEEvent
from rewind_vcs.providers.synthesis import DEFAULT_SHAPE, BodyShape, json_response
from rewind_vcs.store.records import Request, Response

__all__ = ["CHAT", "EMBEDDINGS", "RESPONSES", "VOLATILE", "OpenAIProvider", "endpoint_of"]

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class OpenAIProvider(WireFormat):
    name = "openai"
    hosts = OPENAI_HOSTS

    def recognises(self, host: str, path: str) -> bool:
        return endpoint_of(path) is not None

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
            chat.read_request(body, n)
        elif endpoint == RESPONSES:
            responses.read_request(body, n)
        elif endpoint == EMBEDDINGS:
            embeddings.read_request(body, n)
        return n

    def canonical_request(self, request: Request) -> dict[str, Any]:
        endpoint = endpoint_of(request.path) or "generic"
        body, raw = editable_body(request, VOLATILE)
        if body is None:
            return {"endpoint": endpoint, "body": raw}
        ids = IdMap("call")
        if endpoint == CHAT:
            chat.canonical_ids(body, ids)
        elif endpoint == RESPONSES:
            responses.canonical_ids(body, ids)
        return {"endpoint": endpoint, "body": body}

    def read_response(self, response: Response, n: Normalised) -> None:
        if looks_like_stream(response):
            n.stream = True
            events = stream_events(response)
            if n.endpoint == RESPONSES or any(e.event or "" for e in events[:3]):
                responses.read_stream(events, n)
            else:
                chat.read_stream(events, n)
            return
        data = as_dict(load_json(response.body))
        if data.get("error"):
            read_error(data["error"], n)
            if data.get("object") != "response":
                return
        n.model = n.model or as_str(data.get("model"))
        if data.get("object") == "response" or n.endpoint == RESPONSES:
            responses.read_object(data, n)
        elif n.endpoint == EMBEDDINGS or data.get("object") == "list":
            embeddings.read_list(data, n)
        else:
            chat.read_completion(data, n)

    def is_token_event(self, event: SSEEvent) -> bool:
        data = as_dict(event.json())
        return responses.is_token_event(data) or chat.is_token_event(data)

    def synthesise(
        self, n: Normalised, *, stream: bool, shape: BodyShape = DEFAULT_SHAPE
    ) -> Response:
        if n.endpoint == EMBEDDINGS:
            return embeddings.synthesise(n)
        if n.endpoint == RESPONSES:
            return responses.synthesise(n, stream, shape)
        return chat.synthesise(n, stream, shape)

    def error_response(self, status: int, message: str, *, code: str | None = None) -> Response:
        kind, default_code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        payload = {
            "error": {"message": message, "type": kind, "param": None, "code": code or default_code}
        }
        return json_response(status, payload, headers=[("x-should-retry", "false")])
