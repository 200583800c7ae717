"""Google Gemini: generateContent and streamGenerateContent (``alt=sse``).

The model is in the URL path (``/v1/models/{model}:generateContent``, ``/v1beta/...``,
or Vertex's ``.../publishers/google/models/{model}:...``), not in the body. The REST
API accepts camelCase and snake_case field names; both are read.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

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
    stream_events,
    tool_definition,
)
from rewind_vcs.providers.hosts import GEMINI_HOSTS
from rewind_vcs.providers.sse import SSEEvent
from rewind_vcs.providers.synthesis import (
    DEFAULT_SHAPE,
    BodyShape,
    json_array_response,
    json_response,
    response_id,
    sse_response,
    text_pieces,
)
from rewind_vcs.store.records import Request, Response, Usage

GENERATE = "generateContent"
STREAM = "streamGenerateContent"

_PATH = re.compile(r"/(?:models|tunedModels)/([^/:]+):(generateContent|streamGenerateContent)$")

VOLATILE = frozenset({"labels"})
_STRUCTURE = frozenset(
    {
        "contents",
        "systemInstruction",
        "system_instruction",
        "tools",
        "generationConfig",
        "generation_config",
        "model",
    }
)
#: generationConfig names mapped to the neutral parameter names
_PARAM_NAMES = {
    "temperature": "temperature",
    "topP": "top_p",
    "top_p": "top_p",
    "topK": "top_k",
    "top_k": "top_k",
    "maxOutputTokens": "max_tokens",
    "max_output_tokens": "max_tokens",
    "stopSequences": "stop",
    "stop_sequences": "stop",
    "seed": "seed",
}
_FINISH_REASONS = {
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
}
_FROM_NEUTRAL = {
    "stop": "STOP",
    "length": "MAX_TOKENS",
    "tool_calls": "STOP",
    "content_filter": "SAFETY",
}
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def parse_path(path: str) -> tuple[str | None, str | None]:
    """``(model, endpoint)`` from a request path, or ``(None, None)``."""
    match = _PATH.search(unquote(urlsplit(path).path))
    if not match:
        return None, None
    return match.group(1), match.group(2)


def _pick(data: dict[str, Any], camel: str, snake: str) -> Any:
    return data[camel] if camel in data else data.get(snake)


def _usage(raw: Any) -> Usage:
    data = as_dict(raw)
    return Usage(
        input_tokens=as_int(_pick(data, "promptTokenCount", "prompt_token_count"))
        + as_int(_pick(data, "toolUsePromptTokenCount", "tool_use_prompt_token_count")),
        output_tokens=as_int(_pick(data, "candidatesTokenCount", "candidates_token_count"))
        + as_int(_pick(data, "thoughtsTokenCount", "thoughts_token_count")),
    )


def _function_call(part: dict[str, Any]) -> ToolCall | None:
    call = _pick(part, "functionCall", "function_call")
    if not isinstance(call, dict):
        return None
    args = call.get("args")
    return ToolCall(
        as_str(call.get("name")) or "", args if args is not None else {}, as_str(call.get("id"))
    )


def _parts_text(parts: list[Any]) -> str:
    texts = []
    for part in map(as_dict, parts):
        if part.get("thought") is True:
            continue
        text = as_str(part.get("text"))
        if text is not None:
            texts.append(text)
    return "".join(texts)


_CALL_KEYS = ("functionCall", "function_call", "functionResponse", "function_response")


def _request_part_text(part: dict[str, Any]) -> str | None:
    """A request part as text: its text, a ``[kind]`` placeholder for media, None for calls and thoughts."""
    if part.get("thought") is True:
        return None
    text = as_str(part.get("text"))
    if text is not None:
        return text
    kind = next((k for k in part if k not in _CALL_KEYS and not k.startswith("thought")), None)
    return f"[{kind}]" if kind else None


def _read_error(error: Any, n: Normalised) -> None:
    if isinstance(error, dict):
        n.error_message = as_str(error.get("message")) or "error"
        status = error.get("status") or error.get("code")
        n.error_code = str(status) if status not in (None, "") else None
    elif isinstance(error, str):
        n.error_message = error


class GeminiProvider(WireFormat):
    name = "gemini"
    hosts = GEMINI_HOSTS

    def recognises(self, host: str, path: str) -> bool:
        return parse_path(path)[1] is not None

    def normalise_request(self, request: Request) -> Normalised:
        body = as_dict(load_json(request.body))
        model, endpoint = parse_path(request.path)
        n = Normalised(
            provider=self.name,
            endpoint=endpoint or "generic",
            model=model or as_str(body.get("model")),
            stream=endpoint == STREAM,
            method=request.method,
            path=request.path,
        )
        system = _pick(body, "systemInstruction", "system_instruction")
        if isinstance(system, str):
            n.system = system
        elif isinstance(system, dict):
            n.system = _parts_text(as_list(system.get("parts")))
        messages: list[Message] = []
        for content in map(as_dict, as_list(body.get("contents"))):
            role = "assistant" if content.get("role") == "model" else "user"
            parts = list(map(as_dict, as_list(content.get("parts"))))
            for part in parts:
                result = _pick(part, "functionResponse", "function_response")
                if isinstance(result, dict):
                    messages.append(
                        Message(
                            "tool",
                            json.dumps(result.get("response"), ensure_ascii=False, sort_keys=True),
                            tool_call_id=as_str(result.get("id")),
                            name=as_str(result.get("name")),
                        )
                    )
            calls = [call for call in map(_function_call, parts) if call is not None]
            texts = [t for t in map(_request_part_text, parts) if t is not None]
            only_results = parts and all(
                _pick(p, "functionResponse", "function_response") is not None for p in parts
            )
            if not only_results:
                messages.append(Message(role, "\n".join(texts), calls))
        n.messages = messages
        tools: list[dict[str, Any]] = []
        for tool in map(as_dict, as_list(body.get("tools"))):
            declarations = _pick(tool, "functionDeclarations", "function_declarations")
            for decl in map(as_dict, as_list(declarations)):
                parameters = decl.get("parameters")
                if parameters is None:
                    parameters = _pick(decl, "parametersJsonSchema", "parameters_json_schema")
                tools.append(tool_definition(decl.get("name"), decl.get("description"), parameters))
            for key in tool:
                if key not in ("functionDeclarations", "function_declarations"):
                    tools.append(tool_definition(key, type=key))
        n.tools = tools
        params = {k: v for k, v in body.items() if k not in _STRUCTURE and k not in VOLATILE}
        for key, value in as_dict(_pick(body, "generationConfig", "generation_config")).items():
            params[_PARAM_NAMES.get(key, key)] = value
        n.params = params
        return n

    def canonical_request(self, request: Request) -> dict[str, Any]:
        model, endpoint = parse_path(request.path)
        query = dict(parse_qsl(urlsplit(request.path).query))
        canonical: dict[str, Any] = {"endpoint": endpoint or "generic", "model": model}
        if query.get("alt"):
            canonical["alt"] = query["alt"]  # sse or a JSON array: a different wire answer
        body, raw = editable_body(request, VOLATILE)
        if body is None:
            canonical["body"] = raw
            return canonical
        ids = IdMap("call")
        for content in map(as_dict, as_list(body.get("contents"))):
            for part in map(as_dict, as_list(content.get("parts"))):
                for key in (
                    "functionCall",
                    "function_call",
                    "functionResponse",
                    "function_response",
                ):
                    inner = part.get(key)
                    if isinstance(inner, dict) and "id" in inner:
                        inner["id"] = ids(inner["id"])
                part.pop("thoughtSignature", None)  # opaque, new on every run
                part.pop("thought_signature", None)
        canonical["body"] = body
        return canonical

    # --- responses ---------------------------------------------------------------------

    def read_response(self, response: Response, n: Normalised) -> None:
        if looks_like_stream(response):
            n.stream = True
            chunks = [event.json() for event in stream_events(response)]
        else:
            data = load_json(response.body)
            chunks = data if isinstance(data, list) else [data]  # streams without alt=sse
        texts: list[str] = []
        calls: list[ToolCall] = []
        for chunk in map(as_dict, chunks):
            if chunk.get("error"):
                _read_error(chunk["error"], n)
                continue
            n.model = n.model or as_str(_pick(chunk, "modelVersion", "model_version"))
            candidate = as_dict(next(iter(as_list(chunk.get("candidates"))), None))
            parts = as_list(as_dict(candidate.get("content")).get("parts"))
            texts.append(_parts_text(parts))
            calls.extend(call for call in map(_function_call, map(as_dict, parts)) if call)
            finish = as_str(_pick(candidate, "finishReason", "finish_reason"))
            block = as_str(
                as_dict(_pick(chunk, "promptFeedback", "prompt_feedback")).get("blockReason")
            )
            n.finish_reason = finish or block or n.finish_reason
            usage = _pick(chunk, "usageMetadata", "usage_metadata")
            if isinstance(usage, dict):
                n.usage = _usage(usage)
        n.output_text = "".join(texts)
        n.output_tool_calls = calls

    def is_token_event(self, event: SSEEvent) -> bool:
        candidate = as_dict(next(iter(as_list(as_dict(event.json()).get("candidates"))), None))
        return bool(as_list(as_dict(candidate.get("content")).get("parts")))

    # --- synthesis ---------------------------------------------------------------------

    def synthesise(
        self, n: Normalised, *, stream: bool, shape: BodyShape = DEFAULT_SHAPE
    ) -> Response:
        model = n.model or "unknown"
        rid = response_id("", shape, model, n.output_text, n.started_at)
        finish = (
            n.finish_reason
            if n.finish_reason in _FINISH_REASONS
            else _FROM_NEUTRAL[neutral_finish(n)]
        )
        usage = {
            "promptTokenCount": n.usage.input_tokens,
            "candidatesTokenCount": n.usage.output_tokens,
            "totalTokenCount": n.usage.total,
        }
        call_parts = []
        for call in n.output_tool_calls:
            function_call: dict[str, Any] = {
                "name": call.name,
                "args": call.arguments if isinstance(call.arguments, dict) else {},
            }
            if call.id:
                function_call["id"] = call.id
            call_parts.append({"functionCall": function_call})

        def chunk(parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            out: dict[str, Any] = {"candidates": [candidate]}
            if last:
                candidate["finishReason"] = finish
                out["usageMetadata"] = usage
            out["modelVersion"] = model
            out["responseId"] = rid
            return out

        text_parts = [{"text": n.output_text}] if n.output_text else []
        if not stream:
            return json_response(200, chunk(text_parts + call_parts, True), latency_ms=n.latency_ms)
        bodies: list[list[dict[str, Any]]] = [
            [{"text": piece}] for piece in text_pieces(n.output_text, shape.piece_chars)
        ]
        if call_parts or not bodies:
            bodies.append(call_parts)
        items = [chunk(parts, i == len(bodies) - 1) for i, parts in enumerate(bodies)]
        if not shape.sse:  # without alt=sse the stream is one JSON array
            return json_array_response(items, ttft_ms=n.ttft_ms, latency_ms=n.latency_ms)
        events: list[tuple[str | None, Any]] = [(None, item) for item in items]
        return sse_response(
            events,
            separator="\r\n",
            ttft_ms=n.ttft_ms,
            latency_ms=n.latency_ms,
            content_type="text/event-stream",
        )

    def error_response(self, status: int, message: str, *, code: str | None = None) -> Response:
        name = code or _STATUS_NAMES.get(
            status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"
        )
        payload = {"error": {"code": status, "message": message, "status": name}}
        return json_response(status, payload)
