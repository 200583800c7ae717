"""Provider response bodies for tests, written by the providers' own ``synthesise``.

Tests that need "an OpenAI chat completion saying X" or "an Anthropic stream
of Y" build it here instead of writing the JSON by hand, so there is one
implementation of each wire format (the one replay uses) and a test's body is
always one the official SDKs parse::

    body = reply_body("openai", "Paris.", usage=(12, 3))
    stream = reply_response("anthropic", "Hi there", stream=True)
    calls = reply_body("openai", tool_calls=[tool_call("search", {"q": "x"})])

Tests of the providers' *readers* keep literal bodies captured from the real
APIs instead (``tests/providers``): reading what our own writer wrote would
prove nothing about the real formats.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rewind_vcs.providers.base import Normalised, ToolCall
from rewind_vcs.providers.registry import provider_named
from rewind_vcs.providers.synthesis import BodyShape
from rewind_vcs.store.records import Response, Usage

__all__ = ["reply_body", "reply_response", "reply_view", "tool_call"]

#: the endpoint each provider's replies default to (Gemini streams on streamGenerateContent)
_ENDPOINTS = {"openai": "chat.completions", "anthropic": "messages", "gemini": "generateContent"}
_MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}

#: ``started_at`` of every built reply unless given (2025-06-15T15:06:40Z): stable ids and bytes
BUILT_AT = 1_750_000_000.0


def tool_call(name: str, arguments: Any = None, id: str | None = None) -> ToolCall:
    """A call the model makes (``arguments`` as data; a str is sent as given)."""
    return ToolCall(name, {} if arguments is None else arguments, id)


def reply_view(
    provider: str = "openai",
    text: str = "",
    *,
    tool_calls: Iterable[ToolCall] = (),
    model: str | None = None,
    endpoint: str | None = None,
    usage: tuple[int, int] = (10, 5),
    finish_reason: str | None = None,
    started_at: float = BUILT_AT,
    latency_ms: float = 50.0,
    ttft_ms: float | None = None,
    stream: bool = False,
    params: dict[str, Any] | None = None,
) -> Normalised:
    """The normalised output a reply carries (what ``synthesise`` writes from)."""
    if endpoint is None:
        endpoint = _ENDPOINTS.get(provider, "generic")
        if provider == "gemini" and stream:
            endpoint = "streamGenerateContent"
    return Normalised(
        provider=provider,
        endpoint=endpoint,
        model=model or _MODELS.get(provider),
        output_text=text,
        output_tool_calls=list(tool_calls),
        usage=Usage(*usage),
        finish_reason=finish_reason,
        started_at=started_at,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        stream=stream,
        params=dict(params or {}),
    )


def reply_response(
    provider: str = "openai",
    text: str = "",
    *,
    stream: bool = False,
    shape: BodyShape | None = None,
    **view: Any,
) -> Response:
    """A 200 response carrying the reply, as the provider's API sends it: a JSON body, or
    (``stream``) an event stream whose recorded chunks are one event each, spread over
    ``ttft_ms`` .. ``latency_ms``. ``view`` takes :func:`reply_view`'s keywords."""
    n = reply_view(provider, text, stream=stream, **view)
    wire = provider_named(provider)
    return wire.synthesise(n, stream=stream, shape=shape or BodyShape())


def reply_body(
    provider: str = "openai",
    text: str = "",
    *,
    stream: bool = False,
    shape: BodyShape | None = None,
    **view: Any,
) -> bytes:
    """The bytes of :func:`reply_response`."""
    return reply_response(provider, text, stream=stream, shape=shape, **view).body
