"""Builders of realistic recorded exchanges for store-level tests (no proxy needed)."""

from __future__ import annotations

import time

import orjson

from rewind_vcs.store.records import Exchange, Request, Response, StepInfo, StepKind, Usage
from rewind_vcs.testing.builders import reply_body

API_KEY = "sk-test-SECRET-0123456789abcdef"


def chat_request(messages: list[dict], model: str = "gpt-4o-mini", **params) -> Request:
    body = orjson.dumps({"model": model, "messages": messages, **params})
    return Request(
        method="POST",
        scheme="https",
        host="api.openai.com",
        path="/v1/chat/completions",
        headers=[
            ("content-type", "application/json"),
            ("authorization", f"Bearer {API_KEY}"),
            ("x-stainless-retry-count", "0"),
        ],
        body=body,
    )


def chat_response(text: str, prompt_tokens: int = 10, completion_tokens: int = 5) -> Response:
    body = reply_body("openai", text, usage=(prompt_tokens, completion_tokens))
    return Response(
        status=200,
        reason="OK",
        headers=[("content-type", "application/json"), ("set-cookie", "session=SECRET")],
        body=body,
        chunks=[(0.01, len(body))],
    )


def exchange(text: str = "hello", messages: list[dict] | None = None, **kw) -> Exchange:
    messages = messages or [{"role": "user", "content": text}]
    return Exchange(
        request=chat_request(messages, **kw),
        response=chat_response(f"echo: {text}"),
        started_at=time.time(),
        duration=0.02,
    )


def info(model: str = "gpt-4o-mini", summary: str = "a step", tokens: tuple[int, int] = (10, 5)) -> StepInfo:
    return StepInfo(
        n=0,
        kind=StepKind.LLM,
        provider="openai",
        endpoint="chat.completions",
        model=model,
        http_status=200,
        started_at=time.time(),
        latency_ms=20.0,
        usage=Usage(*tokens),
        cost_usd=0.0001,
        summary=summary,
    )


def write_session(repo, n_steps: int = 3, name: str | None = None, exit_code: int | None = 0, **kw):
    """Record a finished session of ``n_steps`` chat steps; returns its id."""
    w = repo.create_session(name=name, command=["python", "agent.py"], cwd="/tmp", **kw)
    for i in range(n_steps):
        w.append(exchange(f"question {i}"), info(summary=f"step {i + 1}"))
    sid = w.id
    if exit_code is not None:
        w.finish(__import__("rewind_vcs.store.records", fromlist=["EndInfo"]).EndInfo(exit_code=exit_code))
    else:
        w.close()
    return sid
