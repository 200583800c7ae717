"""What the fake LLM answers: a prompt read from each request, and the replies.

:mod:`rewind_vcs.testing.fake_llm` serves the wire formats (its bodies come from
the providers' ``synthesise``); this module decides the *content*. A request is
read with the provider's own reader (:meth:`WireFormat.normalise_request`),
never parsed again here. The default reply is a pure function of the request,
so a recording made against the fake is reproducible:

- the last turn carries tool results -> a text that quotes them;
- the request offers tools and the last turn is a user message -> a call to the
  first tool, with the user's text as its (first string) argument;
- otherwise -> a text that names the model and quotes the last user message.

Tests and the demo can replace that with a *reply script*: a callable
``reply(provider, endpoint, body_json)`` (a :class:`ProviderName`, an
:class:`Endpoint` and the request's JSON object) returning a :class:`Reply`, a dict (see
:meth:`Reply.from_dict`) or ``None`` for the default, or a list of replies
consumed in order (the default again once it runs out).
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from rewind_vcs.providers.base import Normalised, load_json
from rewind_vcs.providers.hosts import ProviderName


class Endpoint(enum.StrEnum):
    """The endpoints the fake serves, named as the providers' normalised views name them."""

    CHAT_COMPLETIONS = "chat.completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"
    MESSAGES = "messages"
    GENERATE_CONTENT = "generateContent"
    STREAM_GENERATE_CONTENT = "streamGenerateContent"


@dataclass(frozen=True)
class ToolSpec:
    """A function tool the request offers: its name and JSON schema."""

    name: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ToolResult:
    """A tool's output handed back to the model in the last turn."""

    name: str
    content: str


@dataclass(frozen=True)
class Prompt:
    """The parts of a request that decide the default reply."""

    model: str
    user_text: str  # the last user message's text ("" when there is none)
    last_is_user: bool  # the last turn is a user message, not tool results
    tool_results: tuple[ToolResult, ...]  # tool results of the last turn
    tools: tuple[ToolSpec, ...]
    all_text: str  # every text of the request, for token counts


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for; an empty ``id`` is filled in by the wire layer."""

    name: str
    arguments: Mapping[str, Any]
    id: str = ""


@dataclass(frozen=True)
class Reply:
    """What the model says: text, tool calls, or both (text first).

    ``input_tokens`` / ``output_tokens`` override the counted usage.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        """Build a reply from ``{"text": ..., "tool_calls": [{"name", "arguments"}],
        "tool_call": {...}, "usage": {"input_tokens", "output_tokens"}}`` (all optional)."""
        unknown = set(data) - {"text", "tool_calls", "tool_call", "usage"}
        if unknown:
            raise ValueError(f"unknown reply keys: {sorted(unknown)}")
        raw_calls = list(data.get("tool_calls") or [])
        if data.get("tool_call"):
            raw_calls.append(data["tool_call"])
        calls = tuple(
            ToolCall(
                name=str(call["name"]),
                arguments=dict(call.get("arguments") or {}),
                id=str(call.get("id") or ""),
            )
            for call in raw_calls
        )
        usage = data.get("usage") or {}
        return cls(
            text=str(data.get("text") or ""),
            tool_calls=calls,
            input_tokens=usage.get("input_tokens"),
            output_tokens=usage.get("output_tokens"),
        )


ReplyFunction: TypeAlias = Callable[
    [ProviderName, Endpoint, dict[str, Any]], Reply | Mapping[str, Any] | None
]
ReplyScript: TypeAlias = ReplyFunction | Sequence[Reply | Mapping[str, Any]]


def coerce_reply(value: Reply | Mapping[str, Any]) -> Reply:
    if isinstance(value, Reply):
        return value
    if isinstance(value, Mapping):
        return Reply.from_dict(value)
    raise TypeError(f"a scripted reply must be a Reply or a dict, not {type(value).__name__}")


class ReplySource:
    """Decides each reply: the script first, then :func:`default_reply`.

    Thread-safe: a list script is consumed under a lock, one entry per call.
    """

    def __init__(self, script: ReplyScript | None = None) -> None:
        self._function: ReplyFunction | None = None
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        if script is None:
            return
        if callable(script):
            self._function = script
        else:
            self._queue = [coerce_reply(item) for item in script]

    def reply_for(
        self, provider: ProviderName, endpoint: Endpoint, body: dict[str, Any], prompt: Prompt
    ) -> Reply:
        if self._function is not None:
            chosen = self._function(provider, endpoint, body)
            if chosen is not None:
                return coerce_reply(chosen)
        else:
            with self._lock:
                if self._queue:
                    return self._queue.pop(0)
        return default_reply(prompt)


def count_tokens(text: str) -> int:
    """A rough, deterministic token count (about four characters a token)."""
    return max(1, (len(text) + 3) // 4)


def default_reply(prompt: Prompt) -> Reply:
    if prompt.tool_results:
        return Reply(
            text=" ".join(f'The {r.name} tool returned: "{r.content}"' for r in prompt.tool_results)
        )
    if prompt.tools and prompt.last_is_user:
        tool = prompt.tools[0]
        return Reply(
            tool_calls=(ToolCall(tool.name, tool_arguments(tool.parameters, prompt.user_text)),)
        )
    return Reply(text=answer_text(prompt.model, prompt.user_text))


def answer_text(model: str, user_text: str) -> str:
    """The default text answer: names the model and quotes the user's message."""
    if not user_text.strip():
        return f"Hello from {model}. Ask me anything."
    quoted = "\n".join(f"> {line}" if line else ">" for line in user_text.strip().splitlines())
    return f"{model} answers, from what you gave me:\n{quoted}"


def tool_arguments(schema: Mapping[str, Any], user_text: str) -> dict[str, Any]:
    """Arguments for a call: the user's text in the schema's first string parameter."""
    properties = schema.get("properties") or {}
    if not isinstance(properties, Mapping) or not properties:
        return {}
    required = [name for name in schema.get("required") or [] if name in properties]
    ordered = required + [name for name in properties if name not in required]
    for name in ordered:
        spec = properties[name]
        kind = str(spec.get("type", "")).lower() if isinstance(spec, Mapping) else ""
        if kind in ("", "string"):
            return {name: user_text}
    return {ordered[0]: user_text}


# ---------------------------------------------------------------------------
# The prompt, from the provider's normalised view of the request


def prompt_from(n: Normalised, model: str) -> Prompt:
    """What decides the default reply, read from a request's normalised view."""
    messages = n.messages
    call_names = {
        call.id: call.name for message in messages for call in message.tool_calls if call.id
    }
    results: list[ToolResult] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        name = message.name or call_names.get(message.tool_call_id or "", "tool")
        results.insert(0, ToolResult(name, _tool_output_text(message.content)))
    users = [m for m in messages if m.role == "user"]
    tools = tuple(
        ToolSpec(str(tool.get("name", "")), _schema(tool.get("parameters")))
        for tool in n.tools
        if "type" not in tool  # function tools: built-in tools carry their type
    )
    texts = [n.system or ""]
    for message in messages:
        texts.append(message.content)
        for call in message.tool_calls:
            texts += [call.name, json.dumps(call.arguments, sort_keys=True)]
    return Prompt(
        model=model,
        user_text=users[-1].content if users else "",
        last_is_user=bool(messages) and messages[-1].role == "user",
        tool_results=tuple(results),
        tools=tools,
        all_text=" ".join(t for t in texts if t),
    )


def _schema(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _tool_output_text(content: str) -> str:
    """A tool's output as text: a JSON object with one string value (Gemini's
    ``{"result": ...}``) unwrapped to that string, anything else as sent."""
    parsed = load_json(content) if content.startswith("{") else None
    if isinstance(parsed, dict) and len(parsed) == 1:
        (only,) = parsed.values()
        if isinstance(only, str):
            return only
    return content
