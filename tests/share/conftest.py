"""Fixtures for the share tests: a repository of realistic and hostile sessions, and Chromium.

``shared_repo`` is built once per test session (read-only afterwards):

- the demo's two recorded runs (``research-good`` tagged good, ``research-stale``
  tagged bad), recorded through the real proxy against the fake provider;
- a fork of the good run at step 2 (timeline ``stale-retry``) carrying the stale
  run's steps 3 and 4, so a session has two timelines and a fork point;
- ``research-500``: the demo agent recorded through the real proxy while the
  fake provider answers its third call with HTTP 500 (an error step, exit 1);
- ``hostile``: a session whose name, span, messages, outputs, tool arguments,
  error body and query string are XSS payloads, and every piece of user or model
  text carries the marker ``USERTEXT`` (a content-free page must not hold it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rewind_vcs.demo.research_agent import ANTHROPIC_KEY, OPENAI_KEY
from rewind_vcs.demo.run import demo_command, run_demo
from rewind_vcs.providers import step_info
from rewind_vcs.proxy.recorder import scrub
from rewind_vcs.proxy.run import ProxySettings, record_run
from rewind_vcs.store.records import EndInfo, Exchange, Request, Response, StepKind
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from rewind_vcs.testing.builders import reply_body, tool_call
from rewind_vcs.testing.fake_llm import FakeLLM
from tests.factories import API_KEY
from tests.share import chromium

MARKER = "USERTEXT"
#: Each payload, if it ever ran, marks the document: the rendered DOM shows whether one did.
PWN_SCRIPT = "<script>document.documentElement.setAttribute('data-pwned','script')</script>"
PWN_BREAKOUT = "</script><script>document.documentElement.setAttribute('data-pwned','breakout')</script>"
PWN_IMG = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">"
PWN_COMMENT = "<!--<script>document.documentElement.setAttribute('data-pwned','comment')</script>-->"
ALERT = "<script>alert(1)</script>"
HOSTILE_NAME = f"{PWN_IMG}{ALERT}"
HOSTILE_SPAN = f"agent{PWN_BREAKOUT}/writer"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, API_KEY, "sk-ant-test-SECRET-key", "AIza-test-SECRET-gemini")


@dataclass
class SharedRepo:
    repo: Repo
    good: str
    stale: str
    failed: str
    hostile: str


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_", "REWIND_")) and "PROXY" not in k.upper()}


def _openai(messages: list[dict], output: dict, *, span: str | None = None, status: int = 200,
            path: str = "/v1/chat/completions", tools: list[dict] | None = None) -> Exchange:
    body = {"model": "gpt-4o-mini", "messages": messages, "temperature": 0.2}
    if tools:
        body["tools"] = tools
    started = time.time()
    return Exchange(
        request=Request("POST", "https", "api.openai.com", path,
                        [("content-type", "application/json"), ("authorization", f"Bearer {API_KEY}")],
                        json.dumps(body).encode()),
        response=Response(status, "OK" if status == 200 else "Too Many Requests",
                          [("content-type", "application/json")], json.dumps(output).encode(),
                          chunks=[(0.03, len(json.dumps(output).encode()))]),
        started_at=started,
        duration=0.03,
        span=span,
    )


def _completion(text: str | None, tool_calls: list[dict] | None = None) -> dict:
    calls = [tool_call(c["function"]["name"], c["function"]["arguments"], c["id"]) for c in tool_calls or []]
    return json.loads(reply_body("openai", text or "", tool_calls=calls, usage=(40, 12)))


def _write_hostile(repo: Repo) -> str:
    tools = [{"type": "function", "function": {"name": "search", "description": "web search",
                                               "parameters": {"type": "object"}}}]
    writer = repo.create_session(
        name=HOSTILE_NAME,
        command=["/home/alice/venv/bin/python", "agent.py", "--input", f"{MARKER} {ALERT}"],
        cwd=f"/home/alice/{MARKER}",
    )
    user = f"{MARKER} question {PWN_SCRIPT} {PWN_BREAKOUT} {PWN_COMMENT} {{{{DATA}}}} ]]>"
    exchanges = [
        _openai([{"role": "system", "content": f"{MARKER} system {PWN_IMG}"}, {"role": "user", "content": user}],
                _completion(None, [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "search", "arguments": json.dumps({"q": f"{MARKER} {PWN_BREAKOUT}"})}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": f"{MARKER}_made_up", "arguments": "{}"}},
                ]), span=HOSTILE_SPAN, tools=tools),
        _openai([{"role": "user", "content": user}], _completion(f"{MARKER} answer {PWN_SCRIPT} {PWN_IMG} {ALERT}"),
                span=HOSTILE_SPAN),
        _openai([{"role": "user", "content": user}],
                {"error": {"message": f"{MARKER} rate limited {PWN_BREAKOUT}", "type": "requests",
                           "code": "rate_limit_exceeded"}}, status=429, span=HOSTILE_SPAN),
    ]
    for i, ex in enumerate(exchanges, 1):
        ex = scrub(ex, ())  # as the proxy's recorder does before anything is summarised
        writer.append(ex, step_info(ex, i, writer.id, hint="openai"))
    # a tool step (a recorded search API): its query string holds the user's text
    tool = Exchange(
        request=Request("GET", "https", "search.example.com", f"/v1/search?q={MARKER}+cars&key=abc",
                        [("x-api-key", API_KEY)], b""),
        response=Response(200, "OK", [("content-type", "application/json")],
                          json.dumps({"result": f"{MARKER} 17 million"}).encode(), chunks=[(0.01, 30)]),
        started_at=time.time(), duration=0.01, span="researcher",
    )
    tool = scrub(tool, ())
    info = step_info(tool, 4, writer.id)
    info.kind = StepKind.TOOL
    writer.append(tool, info)
    writer.finish(EndInfo(exit_code=1, ended_at=time.time()))
    return writer.id


def _fork_good(repo: Repo, good: str, stale: str) -> None:
    main = repo.session(good).main
    writer = SessionWriter.fork(repo, good, main.steps[1].commit_id, "stale-retry")
    for step in repo.session(stale).main.steps[2:]:
        writer.append(step.exchange, step.info)
    writer.finish(EndInfo(exit_code=0, ended_at=time.time()))


@pytest.fixture(scope="session")
def shared_repo(tmp_path_factory) -> SharedRepo:
    root = tmp_path_factory.mktemp("share-repo")
    repo = Repo.init(root)
    env = _clean_env()
    demo = run_demo(repo, python=sys.executable, env=env)
    with FakeLLM(faults=[None, None, "500"], chunk_delay=0.002) as fake:
        settings = ProxySettings(upstreams={"openai": fake.url, "anthropic": fake.url, "gemini": fake.url})
        failed = record_run(repo, demo_command(sys.executable, stale=False), env=env, cwd=str(root),
                            name="research-500", settings=settings)
    _fork_good(repo, demo.good.session_id, demo.bad.session_id)
    hostile = _write_hostile(repo)
    return SharedRepo(repo, demo.good.session_id, demo.bad.session_id, failed.session_id, hostile)


@pytest.fixture(scope="session")
def browser() -> chromium.Browser:
    """Headless Chromium, installed with apt when missing (see tests/share/chromium.py)."""
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    found = chromium.ensure(in_ci)
    if isinstance(found, chromium.Unavailable):
        if found.skippable:
            pytest.skip(f"headless Chromium unavailable: {found.reason}")
        pytest.fail(f"headless Chromium is needed by the share tests and could not be had: {found.reason}",
                    pytrace=False)
    return chromium.Browser(found)


@pytest.fixture
def write(tmp_path):
    """Write a page to a file in tmp_path and return its path."""
    from rewind_vcs.share.html import write_page

    def run(page, name: str = "page.html") -> Path:
        return write_page(page, tmp_path / name)

    return run
