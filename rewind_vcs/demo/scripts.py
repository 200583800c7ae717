"""What the fake LLM answers: a provider-neutral view of each request, and the replies.

:mod:`rewind_vcs.demo.fake_llm` speaks the wire formats; this module decides the
*content*. The default reply is a pure function of the request, so a recording
made against the fake is reproducible:

- the last turn carries tool results -> a text that quotes them;
- the request offers tools and the last turn is a user message -> a call to the
  first tool, with the user's text as its (first string) argument;
- otherwise -> a text that names the model and quotes the last user message.

Tests and the demo can replace that with a *reply script*: a callable
``reply(provider, endpoint, body_json)`` returning a :class:`Reply`, a dict (see
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


class Provider(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


class Endpoint(enum.StrEnum):
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


ReplyFunction: TypeAlias = Callable[[Provider, Endpoint, dict], Reply | Mapping[str, Any] | None]
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
        self, provider: Provider, endpoint: Endpoint, body: dict, prompt: Prompt
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
# Reading requests: one function per provider endpoint, all returning a Prompt.


def prompt_from_request(endpoint: Endpoint, body: Mapping[str, Any], model: str) -> Prompt:
    readers = {
        Endpoint.CHAT_COMPLETIONS: _openai_chat_prompt,
        Endpoint.RESPONSES: _openai_responses_prompt,
        Endpoint.MESSAGES: _anthropic_prompt,
        Endpoint.GENERATE_CONTENT: _gemini_prompt,
        Endpoint.STREAM_GENERATE_CONTENT: _gemini_prompt,
    }
    reader = readers.get(endpoint)
    if reader is None:
        return Prompt(model, "", False, (), (), _all_text(body))
    return reader(body, model)


def _all_text(value: Any) -> str:
    """Every string in a JSON value, joined: the 'prompt' for token counting."""
    out: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, str):
            if item:
                out.append(item)
        elif isinstance(item, Mapping):
            for key, sub in item.items():
                if key not in ("model", "type", "role", "stream"):
                    walk(sub)
        elif isinstance(item, list):
            for sub in item:
                walk(sub)

    walk(value)
    return " ".join(out)


def _text_of(content: Any) -> str:
    """Text of a message content: a string, or a list of parts with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    return ""


def _tool_output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return _text_of(output)
    if isinstance(output, Mapping) and len(output) == 1:
        (only,) = output.values()
        if isinstance(only, str):
            return only
    return json.dumps(output, sort_keys=True)


def _openai_chat_prompt(body: Mapping[str, Any], model: str) -> Prompt:
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    tools = tuple(
        ToolSpec(str(t["function"].get("name", "")), t["function"].get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, Mapping) and isinstance(t.get("function"), Mapping)
    )
    call_names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            call_names[str(call.get("id"))] = str((call.get("function") or {}).get("name", "tool"))
    results: list[ToolResult] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        name = call_names.get(str(message.get("tool_call_id")), "tool")
        results.insert(0, ToolResult(name, _text_of(message.get("content"))))
    users = [m for m in messages if m.get("role") == "user"]
    user_text = _text_of(users[-1].get("content")) if users else ""
    last_is_user = bool(messages) and messages[-1].get("role") == "user"
    return Prompt(model, user_text, last_is_user, tuple(results), tools, _all_text(messages))


def _openai_responses_prompt(body: Mapping[str, Any], model: str) -> Prompt:
    raw_input = body.get("input")
    items: list[Mapping[str, Any]]
    if isinstance(raw_input, str):
        items = [{"role": "user", "content": raw_input}]
    else:
        items = [i for i in raw_input or [] if isinstance(i, Mapping)]
    tools = tuple(
        ToolSpec(str(t.get("name", "")), t.get("parameters") or {})
        for t in body.get("tools") or []
        if isinstance(t, Mapping) and t.get("type") == "function"
    )
    call_names = {
        str(i.get("call_id")): str(i.get("name", "tool"))
        for i in items
        if i.get("type") == "function_call"
    }
    results: list[ToolResult] = []
    for item in reversed(items):
        if item.get("type") != "function_call_output":
            break
        name = call_names.get(str(item.get("call_id")), "tool")
        results.insert(0, ToolResult(name, _tool_output_text(item.get("output"))))
    users = [i for i in items if i.get("role") == "user"]
    user_text = _text_of(users[-1].get("content")) if users else ""
    last_is_user = bool(items) and items[-1].get("role") == "user"
    text = _all_text([body.get("instructions") or "", items])
    return Prompt(model, user_text, last_is_user, tuple(results), tools, text)


def _anthropic_prompt(body: Mapping[str, Any], model: str) -> Prompt:
    messages = [m for m in body.get("messages") or [] if isinstance(m, Mapping)]
    tools = tuple(
        ToolSpec(str(t.get("name", "")), t.get("input_schema") or {})
        for t in body.get("tools") or []
        if isinstance(t, Mapping) and "input_schema" in t
    )
    call_names: dict[str, str] = {}
    for message in messages:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, Mapping) and block.get("type") == "tool_use":
                call_names[str(block.get("id"))] = str(block.get("name", "tool"))
    results: list[ToolResult] = []
    user_text = ""
    last_is_user = False
    if messages and messages[-1].get("role") == "user":
        content = messages[-1].get("content")
        for block in content if isinstance(content, list) else []:
            if isinstance(block, Mapping) and block.get("type") == "tool_result":
                name = call_names.get(str(block.get("tool_use_id")), "tool")
                results.append(ToolResult(name, _tool_output_text(block.get("content", ""))))
        last_is_user = not results
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        blocks = content if isinstance(content, list) else [content]
        texts = [
            b
            for b in blocks
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("type") == "text")
        ]
        if texts:
            user_text = _text_of(texts)
            break
    text = _all_text([body.get("system") or "", messages])
    return Prompt(model, user_text, last_is_user, tuple(results), tools, text)


def _gemini_prompt(body: Mapping[str, Any], model: str) -> Prompt:
    contents = [c for c in body.get("contents") or [] if isinstance(c, Mapping)]
    tools = tuple(
        ToolSpec(
            str(decl.get("name", "")),
            decl.get("parameters")
            or decl.get("parametersJsonSchema")
            or decl.get("parameters_json_schema")
            or {},
        )
        for tool in body.get("tools") or []
        if isinstance(tool, Mapping)
        for decl in tool.get("functionDeclarations") or []
        if isinstance(decl, Mapping)
    )
    results: list[ToolResult] = []
    last_parts = (contents[-1].get("parts") or []) if contents else []
    for part in last_parts:
        if isinstance(part, Mapping) and isinstance(part.get("functionResponse"), Mapping):
            response = part["functionResponse"]
            results.append(
                ToolResult(
                    str(response.get("name", "tool")), _tool_output_text(response.get("response"))
                )
            )
    user_text = ""
    for content in reversed(contents):
        if content.get("role", "user") != "user":
            continue
        texts = [p for p in content.get("parts") or [] if isinstance(p, Mapping) and "text" in p]
        if texts:
            user_text = _text_of(texts)
            break
    last_is_user = bool(contents) and contents[-1].get("role", "user") == "user" and not results
    text = _all_text([body.get("systemInstruction") or "", contents])
    return Prompt(model, user_text, last_is_user, tuple(results), tools, text)
