"""Recording realistic agent runs straight into the store (no proxy): the pairs diff and bisect read.

:func:`record` plays a small multi-agent research run, the wire bytes an
OpenAI and an Anthropic SDK would exchange (see tests/providers/builders.py):

1. ``supervisor`` plans (OpenAI chat, non-streaming);
2. ``supervisor/researcher`` asks for a ``search`` tool call (OpenAI, with tools);
3. ``supervisor/researcher`` reads the tool result and reports (OpenAI);
4. ``supervisor/writer`` writes the answer (Anthropic messages, streamed as SSE).

Every run mints fresh volatile data, as a real API does: response ids,
tool-call ids, ``created`` timestamps, ``date`` and ``x-request-id``
headers, latencies. A :class:`Script` field changed between two runs is the
one cause a bisect must name.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any

from rewind_vcs.demo.research_agent import SEARCH_TOOL
from rewind_vcs.providers import step_info
from rewind_vcs.providers.synthesis import BodyShape
from rewind_vcs.store.records import EndInfo, Exchange, TransportError
from rewind_vcs.testing.builders import reply_response, tool_call
from tests.providers.builders import exchange, request, response

FRESH_FACT = ("About 17 million electric cars were sold worldwide in 2024, more than one in five new "
              "cars sold (IEA, Global EV Outlook 2025).")
STALE_FACT = "About 2.1 million electric cars were sold worldwide in 2019 (IEA, Global EV Outlook 2020)."


@dataclass
class Script:
    """What one run of the research agent does; change one field to make a cause."""

    model: str = "gpt-4o-mini"  # the supervisor's and the researcher's model
    researcher_model: str | None = None  # a different model for the researcher only
    writer_model: str = "claude-haiku-4-5"
    temperature: float = 0.0
    question: str = "How many electric cars were sold worldwide in 2024?"
    researcher_system: str = "You are the researcher. Use the search tool, then report the facts you found."
    tools: list[dict[str, Any]] = field(default_factory=lambda: [SEARCH_TOOL])
    tool_result: str = FRESH_FACT
    fail_step: int | None = None  # this step gets an upstream failure first, then a retry
    fail: str = "http500"  # "http500", "http429" or "reset"
    variant_step: int | None = None  # this step's model answers differently to the same request
    writer_stream: bool = True


def _rid(prefix: str, n: int = 24) -> str:
    return prefix + secrets.token_hex(n // 2)


def _headers(stream: bool = False) -> list[tuple[str, str]]:
    return [
        ("content-type", "text/event-stream; charset=utf-8" if stream else "application/json"),
        ("date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())),
        ("x-request-id", _rid("req_")),
        ("openai-processing-ms", str(secrets.randbelow(900) + 100)),
    ]


def answer(model: str, text: str, variant: bool = False) -> str:
    """A deterministic model: the same request always gets the same words (unless ``variant``)."""
    head = "Alternatively" if variant else "Answer"
    return f"{head} from {model}: {text[:160]}"


def _tokens(payload: Any) -> int:
    return max(len(json.dumps(payload)) // 4, 1)


def openai_call(body: dict[str, Any], text: str | None, calls: list[dict[str, Any]] | None = None,
                span: str | None = None) -> Exchange:
    req = request("/v1/chat/completions", body)
    req.headers = [*req.headers, ("authorization", "Bearer sk-test-SECRET"),
                   ("x-stainless-retry-count", "0")]
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = calls
    resp = reply_response(
        "openai", text or "", model=body["model"], usage=(_tokens(body), _tokens(message)),
        tool_calls=[tool_call(c["function"]["name"], c["function"]["arguments"], c["id"]) for c in calls or []],
        started_at=time.time(), shape=BodyShape(id_seed=_rid("")),
    )
    resp.headers = _headers()
    ex = exchange(req, resp, started_at=time.time(), duration=0.2 + secrets.randbelow(100) / 1000)
    ex.span = span
    return ex


def openai_failure(body: dict[str, Any], kind: str, span: str | None = None) -> Exchange:
    req = request("/v1/chat/completions", body)
    if kind == "reset":
        resp = response(b"", status=0, error=TransportError.CONNECTION_RESET,
                        error_detail="upstream closed the connection")
    else:
        status = 429 if kind == "http429" else 500
        message = "Rate limit reached for requests" if status == 429 else "The server had an error"
        resp = response({"error": {"message": message, "type": "server_error", "code": None}},
                        status=status)
        resp.headers = _headers()
    ex = exchange(req, resp, started_at=time.time(), duration=0.05)
    ex.span = span
    return ex


def anthropic_stream(body: dict[str, Any], text: str, span: str | None = None,
                     stream: bool = True) -> Exchange:
    req = request("/v1/messages", body, host="api.anthropic.com",
                  headers=[("content-type", "application/json"), ("anthropic-version", "2023-06-01"),
                           ("x-api-key", "sk-ant-SECRET")])
    resp = reply_response(
        "anthropic", text, stream=stream, model=body["model"], usage=(_tokens(body), len(text) // 4),
        started_at=time.time(), ttft_ms=300.0, latency_ms=400.0,
        shape=BodyShape(piece_chars=24, id_seed=_rid("")),
    )
    resp.headers = [*_headers(stream), ("request-id", _rid("req_"))]
    ex = exchange(req, resp, started_at=time.time(), duration=0.5 + secrets.randbelow(100) / 1000)
    ex.span = span
    return ex


def exchanges(s: Script) -> list[Exchange]:
    """The run's exchanges in the order they complete."""
    out: list[Exchange] = []
    step = 0

    def call(make_ok, make_fail=None) -> Any:
        nonlocal step
        step += 1
        if s.fail_step == step and make_fail is not None:
            out.append(make_fail())
        result = make_ok(s.variant_step == step)
        out.append(result[0])
        return result[1]

    # 1. the supervisor plans
    plan_body = {"model": s.model, "temperature": s.temperature, "messages": [
        {"role": "system", "content": "You are the supervisor. Plan the research in one line."},
        {"role": "user", "content": s.question}]}
    plan = call(lambda v: _ok(plan_body, answer(s.model, "plan: " + s.question, v), span="supervisor"),
                lambda: openai_failure(plan_body, s.fail, "supervisor"))

    # 2. the researcher asks for a search
    researcher = s.researcher_model or s.model
    system = f"{s.researcher_system}\nThe supervisor's plan: {plan}"
    convo: list[dict[str, Any]] = [{"role": "system", "content": system},
                                   {"role": "user", "content": s.question}]
    ask_body = {"model": researcher, "temperature": s.temperature, "messages": list(convo),
                "tools": s.tools}
    call_id = _rid("call_")

    def ask(variant: bool):
        args = {"query": s.question + (" worldwide" if variant else "")}
        calls = [{"id": call_id, "type": "function",
                  "function": {"name": "search", "arguments": json.dumps(args)}}]
        return openai_call(ask_body, None, calls, span="supervisor/researcher"), args

    query = call(ask, lambda: openai_failure(ask_body, s.fail, "supervisor/researcher"))

    # 3. the researcher reads the tool's result (run by the agent itself, fed back as a tool message)
    convo += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "search", "arguments": json.dumps(query)}}]},
        {"role": "tool", "tool_call_id": call_id, "content": s.tool_result},
    ]
    read_body = {"model": researcher, "temperature": s.temperature, "messages": list(convo),
                 "tools": s.tools}
    notes = call(lambda v: _ok(read_body, answer(researcher, "the search tool returned: " + s.tool_result, v),
                               span="supervisor/researcher"),
                 lambda: openai_failure(read_body, s.fail, "supervisor/researcher"))

    # 4. the writer answers (Anthropic, streamed)
    write_body = {"model": s.writer_model, "max_tokens": 512, "stream": s.writer_stream,
                  "system": "You are the writer. Answer in two sentences.",
                  "messages": [{"role": "user", "content": f"Question: {s.question}\nNotes: {notes}"}]}
    call(lambda v: (anthropic_stream(write_body, answer(s.writer_model, notes, v), "supervisor/writer",
                                     s.writer_stream), None))
    return out


def _ok(body: dict[str, Any], text: str, span: str) -> tuple[Exchange, str]:
    return openai_call(body, text, span=span), text


def hint_of(ex: Exchange) -> str | None:
    """The route hint the proxy would give: the provider for an LLM host, none for a tool host."""
    return {"api.openai.com": "openai", "api.anthropic.com": "anthropic"}.get(ex.request.host)


def write(repo, exs: list[Exchange], name: str | None = None, exit_code: int = 0,
          pack: bool = True) -> str:
    """Commit exchanges as a finished session, with the step.json the proxy would write."""
    w = repo.create_session(name=name, command=["python", "research_agent.py"], cwd=str(repo.workdir))
    for ex in exs:
        w.append(ex, step_info(ex, 0, w.id, hint_of(ex)))
    w.finish(EndInfo(exit_code=exit_code), pack=pack)
    return w.id


def record(repo, script: Script | None = None, name: str | None = None, pack: bool = True,
           **changes: Any) -> str:
    """Record one run of the research agent; ``changes`` override fields of ``script``."""
    s = replace(script or Script(), **changes)
    return write(repo, exchanges(s), name=name, pack=pack)


#: One changed field per cause: (the change, the step BAD departs at).
CAUSES: dict[str, tuple[dict[str, Any], int]] = {
    "model": ({"researcher_model": "gpt-4.1-nano"}, 2),
    "params": ({"temperature": 0.7}, 1),
    "system_prompt": ({"researcher_system": "You are a careful researcher. Cite every source."}, 2),
    "user_input": ({"question": "How many electric cars were sold in Europe in 2024?"}, 1),
    "tools": ({"tools": [{**SEARCH_TOOL, "function": {**SEARCH_TOOL["function"],
                                                      "description": "Search the web."}}]}, 2),
    "tool_result": ({"tool_result": STALE_FACT}, 3),
    "upstream_error": ({"fail_step": 2, "fail": "http500"}, 2),
    "nondeterminism": ({"variant_step": 3}, 3),
}
