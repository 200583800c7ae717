"""The normalised view of an exchange, and the interface every provider implements.

Everything above the proxy (show, diff, bisect, share, replay matching) reads
:class:`Normalised`, never provider JSON. A provider turns an
:class:`~rewind_vcs.store.records.Exchange` into that view
(:meth:`WireFormat.normalise`), computes the replay match key of a request, and
goes back the other way: a wire-valid response from a normalised output
(:meth:`WireFormat.synthesise`, built with :mod:`rewind_vcs.providers.synthesis`)
or an API error body (:meth:`WireFormat.error_response`).

Recorded bodies can be anything (truncated streams, HTML error pages, binary
uploads), so nothing here raises on a malformed body: readers use the ``as_*``
helpers below and fall back to what they can see.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from rewind_vcs.providers.sse import SSEEvent, SSEParser, parse_sse
from rewind_vcs.providers.synthesis import DEFAULT_SHAPE, BodyShape
from rewind_vcs.store.records import (
    Exchange,
    Request,
    Response,
    StepKind,
    StepStatus,
    TransportError,
    Usage,
)

# --- defensive JSON access -------------------------------------------------------------


def load_json(body: bytes | str) -> Any:
    """Parse JSON, or return None for anything that is not a JSON document."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:  # the stdlib also takes NaN, integers beyond 64 bits and UTF-16/32
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int:
    """An integer count (tokens), 0 when absent or not a number."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 2**63:
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def parse_arguments(value: Any) -> Any:
    """Tool-call arguments as data: JSON strings parsed, anything else as given."""
    if isinstance(value, str):
        parsed = load_json(value)
        return value if parsed is None and value.strip() != "null" else parsed
    return value


def dump_arguments(value: Any) -> str:
    """Tool-call arguments as the JSON string OpenAI-style wire formats carry."""
    if isinstance(value, str) and (value == "" or load_json(value) is not None):
        return value
    return json.dumps(value, ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    """Bytes that are equal exactly when two JSON values are equal (key order aside)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson refuses integers beyond 64 bits
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )


def body_digest(body: bytes) -> dict[str, str]:
    """Stands in for a body that is not JSON in a canonical request."""
    return {"sha256": hashlib.sha256(body).hexdigest()}


_WORD = re.compile(r"\S+")


def editable_body(request: Request, volatile: frozenset[str]) -> tuple[dict[str, Any] | None, Any]:
    """A request's JSON object without its ``volatile`` fields, freshly parsed (the caller's
    to edit in place), or ``(None, what stands in for a body that is not a JSON object)``."""
    body = load_json(request.body)
    if not isinstance(body, dict):
        return None, body if body is not None else body_digest(request.body)
    return {k: v for k, v in body.items() if k not in volatile}, None


def one_line(text: str, width: int = 100) -> str:
    """Collapse whitespace to single spaces and cut to ``width`` characters.

    Reads only as many words as the line needs: a 200 MB answer costs no more than a short one.
    """
    words: list[str] = []
    length = -1
    for match in _WORD.finditer(text):
        words.append(match.group())
        length += len(words[-1]) + 1
        if length > width:
            break
    flat = " ".join(words)
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def body_text(body: bytes) -> str | None:
    """The body as text when it is UTF-8 without control bytes, else None."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ch in text for ch in "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f"):
        return None
    return text


class IdMap:
    """Replaces volatile ids (tool-call ids, response ids) by their order of first appearance.

    Two requests that differ only in the ids the API minted map to the same
    placeholders, while which call a result answers is still kept.
    """

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._seen: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        if value not in self._seen:
            self._seen[value] = f"{self._prefix}-{len(self._seen) + 1}"
        return self._seen[value]


# --- the normalised view -----------------------------------------------------------------


@dataclass
class ToolCall:
    name: str
    arguments: Any = None  # parsed JSON when the wire carried valid JSON, else the raw string
    id: str | None = None

    def render(self, width: int = 80) -> str:
        """``search(query="Paris")`` for summaries."""
        if isinstance(self.arguments, dict):
            inner = ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in self.arguments.items()
            )
        elif self.arguments in (None, ""):
            inner = ""
        else:
            inner = (
                self.arguments
                if isinstance(self.arguments, str)
                else json.dumps(self.arguments, ensure_ascii=False)
            )
        return one_line(f"{self.name}({inner})", width)


@dataclass
class Message:
    role: str  # "system", "user", "assistant" or "tool"
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # for role "tool": the call it answers
    name: str | None = None  # the tool's or participant's name, when the wire has one


@dataclass
class Normalised:
    """What one exchange means, independent of the provider's wire format."""

    provider: str
    endpoint: str = "generic"
    kind: StepKind = StepKind.LLM
    model: str | None = None
    system: str | None = None
    messages: list[Message] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False
    output_text: str = ""
    output_tool_calls: list[ToolCall] = field(default_factory=list)
    output_embeddings: list[list[float]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    http_status: int = 0
    status: StepStatus = StepStatus.OK
    error_message: str | None = None
    error_code: str | None = (
        None  # e.g. "rate_limit_exceeded", "overloaded_error", "connection_reset"
    )
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    cost_usd: float | None = None
    started_at: float = 0.0
    method: str = ""
    path: str = ""

    @property
    def user_input(self) -> str | None:
        """The content of the last user message, if any."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.content
        return None

    def summary(self, width: int = 120) -> str:
        """One line for humans: the answer, the tool calls, or the error."""
        if self.kind is not StepKind.LLM:
            line = f"{self.method} {self.path} {self.http_status or '---'}"
            if self.status is StepStatus.ERROR and self.error_message and not self.http_status:
                line += f" ({self.error_message})"
            return one_line(line, width)
        if self.status is StepStatus.ERROR:
            message = self.error_message or "error"
            code = self.error_code or ""
            if code and message.startswith(code):
                code = ""  # a transport error's message already starts with its name
            status = str(self.http_status) if self.http_status >= 400 else ""
            head = " ".join(part for part in (status, code) if part)
            return one_line(f"{head}: {message}" if head else message, width)
        who = self.model or self.provider
        if self.output_tool_calls:
            calls = ", ".join(call.render(width) for call in self.output_tool_calls)
            return one_line(f"{who}: tool_calls: {calls}", width)
        if self.endpoint == "embeddings":
            dims = len(self.output_embeddings[0]) if self.output_embeddings else 0
            return one_line(f"{who}: {len(self.output_embeddings)} embeddings × {dims}", width)
        text = self.output_text
        if len(text) > 64 * width + 4096:  # the line shows its start only
            text = text[: 64 * width + 4096]
        return one_line(f"{who}: {json.dumps(text, ensure_ascii=False)}", width)


# --- the provider interface ------------------------------------------------------------


class WireFormat(abc.ABC):
    """One wire format: how to recognise, key, read and write its exchanges."""

    name: ClassVar[str]
    #: real API hosts this provider serves (for interception and detection)
    hosts: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def recognises(self, host: str, path: str) -> bool:
        """Whether ``path`` (query included) on ``host`` is one of this provider's endpoints."""

    @abc.abstractmethod
    def normalise_request(self, request: Request) -> Normalised:
        """The request half of the view: endpoint, model, system, messages, params, tools, stream."""

    @abc.abstractmethod
    def canonical_request(self, request: Request) -> dict[str, Any]:
        """The semantic request: what must be equal for a recording to answer it."""

    @abc.abstractmethod
    def read_response(self, response: Response, n: Normalised) -> None:
        """Fill the output half of ``n`` (text, tool calls, usage, finish, API error)."""

    @abc.abstractmethod
    def is_token_event(self, event: SSEEvent) -> bool:
        """Whether a stream event carries output (for time to first token)."""

    @abc.abstractmethod
    def synthesise(
        self, n: Normalised, *, stream: bool, shape: BodyShape = DEFAULT_SHAPE
    ) -> Response:
        """A wire-valid response carrying ``n``'s output, that the official SDK parses back.

        ``shape`` says how to cut the stream and where ids come from (see
        :class:`~rewind_vcs.providers.synthesis.BodyShape`).
        """

    @abc.abstractmethod
    def error_response(self, status: int, message: str, *, code: str | None = None) -> Response:
        """An API error in this provider's format; the SDK raises its class for ``status``."""

    def match_key(self, request: Request) -> str:
        return hashlib.sha256(canonical_json(self.canonical_request(request))).hexdigest()

    def normalise(self, exchange: Exchange) -> Normalised:
        n = self.normalise_request(exchange.request)
        response = exchange.response
        n.started_at = exchange.started_at
        n.latency_ms = round(exchange.duration * 1000.0, 3)
        n.http_status = response.status
        self.read_response(response, n)
        if looks_like_stream(response):  # an error body answering a stream request has no TTFT
            ttft = first_token_ms(response, self.is_token_event)
            if ttft is None and exchange.ttfb is not None:
                ttft = round(exchange.ttfb * 1000.0, 3)
            n.ttft_ms = ttft
        finish_status(n, response)
        return n


def first_token_ms(response: Response, is_token: Callable[[SSEEvent], bool]) -> float | None:
    """Time to the first chunk that completes an output event, from the recorded chunk timings.

    Falls back to the first chunk when no event carries output (or the chunk
    lengths do not add up to the body).
    """
    if not response.chunks:
        return None
    first = round(response.chunks[0][0] * 1000.0, 3)
    if sum(size for _, size in response.chunks) != len(response.body):
        return first
    parser = SSEParser()
    offset = 0
    for at, size in response.chunks:
        events = parser.feed(response.body[offset : offset + size])
        offset += size
        if any(is_token(event) for event in events):
            return round(at * 1000.0, 3)
    return first


def finish_status(n: Normalised, response: Response) -> None:
    """Set ``status`` (and a message) from the transport error, HTTP status and parsed error.

    A client that hangs up right after the model's last event (an agent that
    stops reading at ``message_stop``, before the chunked terminator arrives)
    got the whole answer: that exchange is ``ok``, not an error.
    """
    finished = n.finish_reason is not None and 0 < response.status < 400 and not n.error_message
    if response.error is TransportError.CLIENT_DISCONNECTED and finished:
        return
    if response.error is not None:
        n.status = StepStatus.ERROR
        detail = f": {response.error_detail}" if response.error_detail else ""
        transport = f"{response.error.value}{detail}"
        n.error_message = f"{n.error_message}; {transport}" if n.error_message else transport
        n.error_code = n.error_code or response.error.value
        return
    if response.status >= 400 or response.status == 0:
        n.status = StepStatus.ERROR
        if not n.error_message:
            text = body_text(response.body) or ""
            n.error_message = one_line(text, 200) if text.strip() else f"HTTP {response.status}"
        return
    if n.error_message:
        n.status = StepStatus.ERROR


def stream_events(response: Response) -> list[SSEEvent]:
    return parse_sse(response.body)


def looks_like_stream(response: Response) -> bool:
    """A stream by content type, or by shape when a server mislabels it."""
    if response.is_stream:
        return True
    head = response.body[:64].lstrip()
    return head.startswith((b"data:", b"event:", b":"))


# --- finish reasons --------------------------------------------------------------------

#: provider finish reasons mapped to four neutral ones, so a step recorded with one
#: provider can be synthesised in another's format
_NEUTRAL_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "completed": "stop",
    "pause_turn": "stop",
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_context_window_exceeded": "length",
    "MAX_TOKENS": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


def neutral_finish(n: Normalised) -> str:
    """``stop``, ``length``, ``tool_calls`` or ``content_filter`` for ``n``'s output."""
    neutral = _NEUTRAL_FINISH.get(n.finish_reason or "")
    if neutral == "stop" and n.output_tool_calls:
        return "tool_calls"  # Gemini says STOP after a function call
    if neutral:
        return neutral
    return "tool_calls" if n.output_tool_calls else "stop"


def tool_definition(
    name: Any, description: Any = None, parameters: Any = None, **extra: Any
) -> dict[str, Any]:
    """A tool definition as a plain dict: name, description, parameters (and a type for built-ins)."""
    out: dict[str, Any] = {"name": name if isinstance(name, str) else str(name)}
    if isinstance(description, str) and description:
        out["description"] = description
    if parameters is not None:
        out["parameters"] = parameters
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def split_system(messages: list[Message], prefix: list[str]) -> tuple[str | None, list[Message]]:
    """Move leading system messages (after ``prefix`` texts) into one system prompt."""
    parts = [p for p in prefix if p]
    rest = list(messages)
    while rest and rest[0].role == "system":
        parts.append(rest.pop(0).content)
    return ("\n\n".join(parts) if parts else None), rest
