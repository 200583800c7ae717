"""What diff and bisect compare: one step's request and response as plain data, volatile parts left out.

A :class:`StepView` reads a step's ``step.json`` and bodies once, and builds
the normalised view (providers' :func:`~rewind_vcs.providers.normalise`) only
when a comparison needs it. The plain views keep what a user means by "the
same call": model, system prompt, messages, params and tool definitions on the
request side; output text, tool calls, usage, finish reason and status on the
response side. Ids the API minted (tool-call ids, response ids), timestamps,
headers (``Date``, request ids) and latency are never part of a view, so two
recordings of one deterministic run compare equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from functools import cached_property
from typing import Any

from rewind_vcs.providers import Message, Normalised, detect, match_key, normalise
from rewind_vcs.providers.base import IdMap, canonical_json, finish_status, load_json
from rewind_vcs.store.records import Exchange, Request, Response, StepInfo, StepKind, StepStatus
from rewind_vcs.store.session import Step

#: HTTP statuses that say the upstream, not the request, failed (overload, rate limit, outage)
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})


class StepView:
    """One recorded step, read once, compared lazily."""

    def __init__(self, step: Step) -> None:
        self.step = step

    @cached_property
    def info(self) -> StepInfo:
        return self.step.info

    @property
    def n(self) -> int:
        return self.info.n

    @cached_property
    def match_key(self) -> str:
        """The replay key from ``step.json``; computed from the request when a writer left it out."""
        return self.info.match_key or match_key(self.step.request, self.info.provider)

    @cached_property
    def signature(self) -> tuple[str, str, str, str, str, str]:
        """What must be equal for two steps to be "the same call" (used to align timelines).

        The status is part of it, so a failed call and its successful retry never both claim
        the one call the other run made: the retry pairs with it, the failure stands alone.
        """
        info = self.info
        return (info.provider, info.endpoint, info.model or "", info.span or "", self.match_key,
                info.status.value)

    @cached_property
    def shape(self) -> tuple[str, str, str]:
        """A coarser signature: the same kind of call at the same place in the agent."""
        info = self.info
        return (info.provider, info.endpoint, info.span or "")

    @cached_property
    def request_normalised(self) -> Normalised:
        """The request half of the view (the response is read apart, when it is needed)."""
        request = self.step.request
        try:
            return detect(request, self.info.provider).normalise_request(request)
        except Exception:  # noqa: BLE001 - the full path has the providers' own fallback
            return normalise(self.step.exchange, self.info.provider)

    @cached_property
    def response_normalised(self) -> Normalised:
        """The output half of the view, read without parsing the request's body."""
        return normalise_response(self.step.request, self.step.response, self.info.provider)

    @cached_property
    def response_bytes(self) -> tuple[int, bytes, str | None]:
        response = self.step.response
        return response.status, response.body, response.error.value if response.error else None

    @cached_property
    def request_view(self) -> dict[str, Any]:
        return request_view(self.request_normalised, self.step.request.body)

    @cached_property
    def response_view(self) -> dict[str, Any]:
        return response_view(self.response_normalised, self.step.response.body)

    @property
    def is_error(self) -> bool:
        """From the normalised view (what the diff shows), not the ``step.json`` written at record
        time, so both agree even when a later rewind reads a response differently."""
        return self.response_view["status"] == StepStatus.ERROR.value

    @property
    def is_transient_error(self) -> bool:
        """An error the upstream caused whatever was asked: 429, 5xx, or no complete response."""
        if not self.is_error:
            return False
        status = self.response_view["http_status"]
        return status == 0 or status in TRANSIENT_STATUSES or self.step.response.error is not None

    @property
    def label(self) -> str:
        return self.info.summary or self.info.endpoint or self.step.request.path


def normalise_response(request: Request, response: Response, hint: str | None) -> Normalised:
    """:func:`~rewind_vcs.providers.normalise` without parsing the request body: most pairs a
    diff compares asked the same thing (equal match keys), and only their answers need reading.
    The request's method and path still pick the provider and endpoint."""
    provider = detect(request, hint)
    try:
        n = provider.normalise_request(replace(request, body=b""))
        n.http_status = response.status
        provider.read_response(response, n)
        finish_status(n, response)
        return n
    except Exception:  # noqa: BLE001 - the full path has the providers' own fallback
        return normalise(Exchange(request, response, 0.0, 0.0), hint)


def load_views(steps: list[Step]) -> list[StepView]:
    return [StepView(s) for s in steps]


def _message(m: Message, ids: IdMap) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": ids(c.id), "name": c.name, "arguments": c.arguments} for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = ids(m.tool_call_id)
    if m.name is not None:
        out["name"] = m.name
    return out


def _body_data(body: bytes, text: str) -> Any:
    """A body as JSON data when it is JSON, else its text (a digest for binary bodies)."""
    data = load_json(body) if body else None
    if data is not None:
        return data
    if text or not body:
        return text
    return {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def request_view(n: Normalised, body: bytes) -> dict[str, Any]:
    """The request as plain data: what was asked, without the ids the API minted."""
    if n.kind is not StepKind.LLM:
        text = n.messages[0].content if n.messages else ""
        return {"method": n.method, "path": n.path, "body": _body_data(body, text)}
    ids = IdMap("call")
    return {
        "provider": n.provider,
        "endpoint": n.endpoint,
        "model": n.model,
        "system": n.system,
        "messages": [_message(m, ids) for m in n.messages],
        "params": n.params,
        "tools": n.tools,
        "stream": n.stream,
    }


def response_view(n: Normalised, body: bytes) -> dict[str, Any]:
    """The response as plain data: what came back, without ids, timestamps or headers."""
    out: dict[str, Any] = {
        "status": n.status.value,
        "http_status": n.http_status,
        "error": n.error_message,
    }
    if n.kind is not StepKind.LLM:
        out["output"] = _body_data(body, n.output_text)
        return out
    out["output_text"] = n.output_text
    out["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in n.output_tool_calls]
    out["finish_reason"] = n.finish_reason
    out["usage"] = n.usage.to_json()
    if n.output_embeddings:
        out["embeddings"] = {
            "count": len(n.output_embeddings),
            "sha256": hashlib.sha256(canonical_json(n.output_embeddings)).hexdigest(),
        }
    return out


def same(a: Any, b: Any) -> bool:
    """Equal as JSON values (key order aside)."""
    return a == b or canonical_json(a) == canonical_json(b)
