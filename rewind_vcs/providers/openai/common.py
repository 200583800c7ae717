"""What OpenAI's three endpoints share: content text, roles, params, usage and errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rewind_vcs.providers.base import Normalised, ToolCall, as_dict, as_int, as_list, as_str
from rewind_vcs.providers.base import parse_arguments as _parse_arguments
from rewind_vcs.store.records import Usage

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


def endpoint_of(path: str) -> str | None:
    """``chat.completions``, ``responses`` or ``embeddings`` by the path suffix, whatever the prefix."""
    route = urlsplit(path).path.rstrip("/")
    for suffix, endpoint in _SUFFIXES:
        if route.endswith(suffix):
            return endpoint
    return None


def content_text(content: Any) -> str:
    """Chat or Responses content (a string or a list of parts) as text."""
    if isinstance(content, str):
        return content
    texts = []
    for raw in as_list(content):
        if isinstance(raw, str):
            texts.append(raw)
            continue
        part = as_dict(raw)
        kind = as_str(part.get("type")) or ""
        text = as_str(part.get("text"))
        if text is None:
            text = as_str(part.get("refusal"))
        if text is not None:
            texts.append(text)
        elif kind:
            texts.append(f"[{kind.removeprefix('input_')}]")
    return "\n".join(texts)


def role(value: Any) -> str:
    if value in ("system", "developer"):
        return "system"
    if value in ("tool", "function"):
        return "tool"
    if value == "assistant":
        return "assistant"
    return "user"


def params(body: dict[str, Any], structure: frozenset[str]) -> dict[str, Any]:
    """The answer-changing options of a request, ``max_tokens`` under one name."""
    out = {k: v for k, v in body.items() if k not in structure and k not in VOLATILE}
    for alias in ("max_completion_tokens", "max_output_tokens"):
        if alias in out and "max_tokens" not in out:
            out["max_tokens"] = out.pop(alias)
    return out


def usage_of(data: Any) -> Usage:
    usage = as_dict(data)
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
        output_tokens=as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
    )


def read_error(error: Any, n: Normalised) -> None:
    if isinstance(error, dict):
        n.error_message = as_str(error.get("message")) or n.error_message or "error"
        code = error.get("code") or error.get("type")
        n.error_code = str(code) if code not in (None, "") else None
    elif isinstance(error, str):
        n.error_message = error


class CallSlot:
    """A tool call assembled from stream fragments: id and name once, arguments appended."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self.arguments = ""

    def call(self) -> ToolCall:
        return ToolCall(self.name, _parse_arguments(self.arguments), self.id)
