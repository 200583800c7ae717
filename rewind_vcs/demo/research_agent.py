#!/usr/bin/env python3
"""rewind's demo agent: a small multi-agent research pipeline, standard library only.

- the **supervisor** (OpenAI chat completions) plans the research;
- the **researcher** (OpenAI chat completions, with a ``search`` tool in a tool
  loop) looks the figures up;
- the **writer** (Anthropic messages, streamed) writes the final answer from
  the researcher's report.

It talks to whatever ``OPENAI_BASE_URL`` and ``ANTHROPIC_BASE_URL`` point at
(``rewind record`` points them at its proxy; ``rewind demo`` at a fake
provider), with dummy keys the proxy strips. Each call carries an
``X-Rewind-Span`` header naming the agent that made it.

``RESEARCH_AGENT_STALE=1`` (or ``--stale``) makes a run that goes wrong late:
the search tool answers from a stale index (the 2019 figure, not the 2024
one), so the first calls are identical and only the later steps differ.
``SEARCH_URL``, when set, replaces the built-in index with an HTTP GET to
``$SEARCH_URL?q=<query>`` (a text body, or JSON with a ``result`` field).

Usage: ``python research_agent.py --input '{"query": "How many electric cars were sold in 2024?"}'``
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

#: a JSON object as the APIs send and take it
JSON = dict[str, Any]

DEFAULT_QUERY = "How many electric cars were sold worldwide in 2024?"
SUPERVISOR_MODEL = "gpt-4o-mini"
RESEARCHER_MODEL = "gpt-4o-mini"
WRITER_MODEL = "claude-haiku-4-5"
OPENAI_KEY = "sk-demo-rewind-not-a-real-key"
ANTHROPIC_KEY = "sk-ant-demo-rewind-not-a-real-key"
TIMEOUT_SECONDS = 60
MAX_TOOL_ROUNDS = 4


class AgentError(Exception):
    """A call failed; the message names the agent and the cause."""


@dataclass(frozen=True)
class Fact:
    keywords: frozenset[str]
    current: str  # what an up-to-date index returns
    stale: str  # what a stale index returns


FACTS = (
    Fact(
        frozenset({"electric", "ev", "evs", "car", "cars", "sold", "sales", "vehicles"}),
        "About 17 million electric cars were sold worldwide in 2024, more than one in five "
        "new cars sold (IEA, Global EV Outlook 2025).",
        "About 2.1 million electric cars were sold worldwide in 2019, 2.6% of new cars sold "
        "(IEA, Global EV Outlook 2020).",
    ),
    Fact(
        frozenset({"solar", "photovoltaic", "pv", "panels", "capacity", "installed"}),
        "Roughly 550 GW of new solar PV capacity was installed worldwide in 2024 "
        "(IEA, Renewables 2024).",
        "Roughly 110 GW of new solar PV capacity was installed worldwide in 2019 "
        "(IEA, Renewables 2020).",
    ),
    Fact(
        frozenset({"tokyo", "population", "residents", "people", "inhabitants"}),
        "Tokyo Metropolis had about 14.2 million residents in 2024 "
        "(Tokyo Metropolitan Government).",
        "Tokyo Metropolis had about 13.9 million residents in 2019 "
        "(Tokyo Metropolitan Government).",
    ),
)

SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search an index of recent statistics. Returns one sourced fact.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "what to look up"}},
            "required": ["query"],
        },
    },
}


def local_search(query: str, *, stale: bool) -> str:
    """The built-in index: the fact sharing the most words with the query."""
    words = set(re.findall(r"[a-z0-9]+", query.lower()))
    best = max(FACTS, key=lambda fact: len(fact.keywords & words))
    if not best.keywords & words:
        return f"No indexed fact matches {query!r}."
    return best.stale if stale else best.current


def http_search(search_url: str, query: str) -> str:
    separator = "&" if "?" in search_url else "?"
    url = f"{search_url}{separator}{urllib.parse.urlencode({'q': query})}"
    request = urllib.request.Request(url, headers={"X-Rewind-Span": "supervisor/researcher"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            text: str = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise AgentError(f"search: GET {url} failed: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()
    result = data.get("result") if isinstance(data, dict) else None
    if isinstance(result, str):
        return result
    return text.strip()


# ---------------------------------------------------------------------------
# HTTP


def _open(url: str, body: JSON, headers: dict[str, str], span: str) -> http.client.HTTPResponse:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "rewind-demo-research-agent/1",
            "X-Rewind-Span": span,
            **headers,
        },
    )
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(
            request, timeout=TIMEOUT_SECONDS
        )
        return response
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace").strip()
        raise AgentError(f"{span}: POST {url} returned HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise AgentError(f"{span}: POST {url} failed: {exc}") from exc


def post_json(url: str, body: JSON, headers: dict[str, str], span: str) -> JSON:
    with _open(url, body, headers, span) as response:
        try:
            data = json.loads(response.read())
        except (ValueError, http.client.HTTPException, OSError) as exc:
            raise AgentError(f"{span}: bad response from {url}: {exc}") from exc
    if not isinstance(data, dict):
        raise AgentError(f"{span}: bad response from {url}: not a JSON object")
    return data


def post_sse(
    url: str, body: JSON, headers: dict[str, str], span: str
) -> Iterator[tuple[str, JSON]]:
    """POST and yield ``(event name, data)`` for each server-sent event, as it arrives."""
    with _open(url, body, headers, span) as response:
        event, data_lines = "", []
        try:
            for raw in response:
                line = raw.decode("utf-8").rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data_lines.append(line[5:].lstrip(" "))
                elif not line and data_lines:
                    yield event, json.loads("\n".join(data_lines))
                    event, data_lines = "", []
        except (ValueError, http.client.HTTPException, OSError) as exc:
            raise AgentError(f"{span}: stream from {url} broke: {exc}") from exc


class OpenAIChat:
    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {OPENAI_KEY}"}

    def complete(
        self, span: str, model: str, messages: list[JSON], tools: list[JSON] | None = None
    ) -> JSON:
        body: JSON = {"model": model, "messages": messages, "temperature": 0}
        if tools:
            body["tools"] = tools
        data = post_json(self.url, body, self.headers, span)
        try:
            message: JSON = data["choices"][0]["message"]
            return message
        except (KeyError, IndexError, TypeError) as exc:
            raise AgentError(f"{span}: no message in the response: {data}") from exc


class AnthropicMessages:
    def __init__(self, base_url: str) -> None:
        self.url = base_url.rstrip("/") + "/v1/messages"
        self.headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}

    def stream_text(self, span: str, model: str, system: str, user: str) -> str:
        body = {
            "model": model,
            "max_tokens": 1024,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "stream": True,
        }
        parts: list[str] = []
        for event, data in post_sse(self.url, body, self.headers, span):
            if event == "error":
                raise AgentError(f"{span}: the stream reported an error: {data}")
            if event == "content_block_delta" and data.get("delta", {}).get("type") == "text_delta":
                parts.append(data["delta"]["text"])
            if event == "message_stop":
                return "".join(parts)
        raise AgentError(f"{span}: the stream from {self.url} ended before message_stop")


# ---------------------------------------------------------------------------
# The agents


def supervise(chat: OpenAIChat, query: str) -> str:
    message = chat.complete(
        "supervisor",
        SUPERVISOR_MODEL,
        [
            {
                "role": "system",
                "content": "You are the supervisor of a research team. Write a short plan: "
                "what the researcher must look up, and what the writer must answer.",
            },
            {"role": "user", "content": f"Plan the research for this question: {query}"},
        ],
    )
    return message.get("content") or ""


def research(chat: OpenAIChat, query: str, plan: str, search: Callable[[str], str]) -> str:
    """The researcher's tool loop; returns its report."""
    messages: list[JSON] = [
        {
            "role": "system",
            "content": "You are the researcher. Use the search tool, then report the facts "
            f"you found with their sources. The supervisor's plan:\n{plan}",
        },
        {"role": "user", "content": query},
    ]
    for _ in range(MAX_TOOL_ROUNDS):
        message = chat.complete("supervisor/researcher", RESEARCHER_MODEL, messages, [SEARCH_TOOL])
        calls = message.get("tool_calls") or []
        if not calls:
            return message.get("content") or ""
        messages.append(
            {"role": "assistant", "content": message.get("content"), "tool_calls": calls}
        )
        for call in calls:
            try:
                arguments = json.loads(call["function"]["arguments"] or "{}")
            except ValueError:
                arguments = {}
            result = search(str(arguments.get("query") or query))
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": result})
    raise AgentError(f"supervisor/researcher: still calling tools after {MAX_TOOL_ROUNDS} rounds")


def write(messages_api: AnthropicMessages, query: str, report: str) -> str:
    return messages_api.stream_text(
        "supervisor/writer",
        WRITER_MODEL,
        "You are the writer. Answer the question in two sentences, citing the report's source.",
        f"Question: {query}\nResearcher's report: {report}",
    ).strip()


def run(
    query: str,
    *,
    openai_base_url: str,
    anthropic_base_url: str,
    stale: bool,
    search_url: str | None,
) -> str:
    chat = OpenAIChat(openai_base_url)
    if search_url:

        def search(q: str) -> str:
            return http_search(search_url, q)
    else:

        def search(q: str) -> str:
            return local_search(q, stale=stale)

    plan = supervise(chat, query)
    report = research(chat, query, plan, search)
    return write(AnthropicMessages(anthropic_base_url), query, report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="rewind's demo research agent")
    parser.add_argument(
        "--input",
        default=json.dumps({"query": DEFAULT_QUERY}),
        help='JSON with the question, e.g. \'{"query": "..."}\'',
    )
    parser.add_argument(
        "--stale", action="store_true", help="search a stale index (same as RESEARCH_AGENT_STALE=1)"
    )
    args = parser.parse_args(argv)
    try:
        query = str(json.loads(args.input)["query"])
    except (ValueError, KeyError, TypeError):
        parser.error('--input must be JSON like {"query": "..."}')
    stale = args.stale or os.environ.get("RESEARCH_AGENT_STALE", "") not in ("", "0")
    try:
        answer = run(
            query,
            openai_base_url=os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
            anthropic_base_url=os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com",
            stale=stale,
            search_url=os.environ.get("SEARCH_URL") or None,
        )
    except AgentError as exc:
        print(f"research_agent: {exc}", file=sys.stderr)
        return 1
    print(answer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
