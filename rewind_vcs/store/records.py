"""Typed records: what one recorded exchange is, and the metadata of steps and sessions.

These dataclasses are the contract between the layers: the proxy fills an
:class:`Exchange`, a provider reads it and produces the summary fields of a
:class:`StepInfo`, and the store writes both into a git commit (see
docs/FORMAT.md for the exact bytes).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

#: Version of every JSON record rewind writes (step.json, session.json, meta files).
FORMAT_VERSION = 1


class StepKind(enum.StrEnum):
    """What a step records."""

    LLM = "llm"  # a call to a model provider
    TOOL = "tool"  # an HTTP call to a host recorded with --record-host
    HTTP = "http"  # any other exchange (unknown endpoint on a known host)


class StepStatus(enum.StrEnum):
    OK = "ok"  # 2xx/3xx, complete
    ERROR = "error"  # 4xx/5xx, or no complete response (see Response.error)


class SessionStatus(enum.StrEnum):
    RECORDING = "recording"  # no closing commit yet, and a recorder holds the lease
    OK = "ok"  # closed, exit code 0
    FAILED = "failed"  # closed, exit code != 0
    INCOMPLETE = "incomplete"  # no closing commit and no recorder alive (crash, kill -9)


class TransportError(enum.StrEnum):
    """Why an exchange has no complete response."""

    CONNECTION_REFUSED = "connection_refused"
    CONNECTION_RESET = "connection_reset"  # upstream dropped the connection
    TIMEOUT = "timeout"
    CLIENT_DISCONNECTED = "client_disconnected"  # the client hung up mid-response
    UPSTREAM_TLS = "upstream_tls"
    BAD_RESPONSE = "bad_response"  # upstream sent malformed HTTP


Headers = list[tuple[str, str]]


def find_header(headers: Headers, name: str, default: str | None = None) -> str | None:
    """The first value of header ``name`` (case-insensitive)."""
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


@dataclass
class Request:
    """An HTTP request as the client sent it (secrets already removed)."""

    method: str
    scheme: str  # "http" or "https": how the client reached the proxy or upstream
    host: str  # host[:port] the client addressed (the real API host, or the proxy)
    path: str  # path plus query string, e.g. "/v1/chat/completions"
    headers: Headers = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        return find_header(self.headers, name, default)


@dataclass
class Response:
    """What came back: status, headers and the exact body bytes.

    ``chunks`` lists every piece as it arrived from the upstream, as
    ``(seconds since the request started, byte length)``; the pieces add up to
    ``body``. ``error`` is set when the exchange did not complete (no response
    at all, or a body cut short); ``status`` is then the status received, or 0.
    """

    status: int = 0
    reason: str = ""
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    chunks: list[tuple[float, int]] = field(default_factory=list)
    error: TransportError | None = None
    error_detail: str = ""

    def header(self, name: str, default: str | None = None) -> str | None:
        return find_header(self.headers, name, default)

    @property
    def is_stream(self) -> bool:
        return (self.header("content-type") or "").startswith("text/event-stream")


@dataclass
class Exchange:
    """One request and its response, as captured by the proxy."""

    request: Request
    response: Response
    started_at: float  # unix time (seconds, float) when the request arrived
    duration: float  # seconds until the last byte (or the error)
    span: str | None = None  # X-Rewind-Span value, e.g. "supervisor/writer"
    ttfb: float | None = None  # seconds to the first response byte


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}


@dataclass
class StepInfo:
    """The summary of a step kept in ``step.json`` (enough for ``log`` without parsing bodies)."""

    n: int  # 1-based position on its timeline
    kind: StepKind = StepKind.HTTP
    provider: str = "generic"
    endpoint: str = ""  # e.g. "chat.completions", "messages", "generateContent"
    model: str | None = None
    status: StepStatus = StepStatus.OK
    http_status: int = 0
    error: str | None = None  # transport error or API error message, one line
    started_at: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    match_key: str = ""  # hex digest of the provider's canonical request
    summary: str = ""  # one line for humans
    span: str | None = None
    session: str = ""  # session id (the root commit's short hash)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SessionInfo:
    """What ``session.json`` holds (written once, in the root commit)."""

    name: str | None = None
    command: list[str] = field(default_factory=list)
    cwd: str = ""
    started_at: float = 0.0
    rewind_version: str = ""
    code_version: dict[str, Any] | None = None  # {"commit": sha, "dirty": bool} of the agent's work tree
    tags: list[str] = field(default_factory=list)
    nonce: str = ""  # makes two sessions started at the same instant distinct
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class EndInfo:
    """What is known only when a run ends (the closing commit's ``end.json``)."""

    exit_code: int | None = None
    ended_at: float = 0.0
    stdout_digest: str | None = None  # "sha256:<hex>" of the child's stdout
    stdout: bytes | None = None  # stored as end/stdout when given
    steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
