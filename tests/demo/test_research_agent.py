"""The demo's research agent, run as a real child process against the fake provider."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rewind_vcs.demo import research_agent
from rewind_vcs.testing.fake_llm import FakeLLM

from .conftest import child_env

AGENT = Path(research_agent.__file__)
SPANS = ["supervisor", "supervisor/researcher", "supervisor/researcher", "supervisor/writer"]


def run_agent(fake: FakeLLM, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(AGENT), *args],
        env=child_env(fake, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_agent_answers_deterministically_citing_the_researchers_facts(fake):
    first = run_agent(fake)
    assert first.returncode == 0, first.stderr
    assert "About 17 million electric cars were sold worldwide in 2024" in first.stdout
    assert "IEA, Global EV Outlook 2025" in first.stdout
    assert first.stdout.startswith(f"{research_agent.WRITER_MODEL} answers")
    requests = fake.requests
    assert [r.headers["x-rewind-span"] for r in requests] == SPANS
    assert [r.path for r in requests] == ["/v1/chat/completions"] * 3 + ["/v1/messages"]
    assert all(r.headers["authorization"].startswith("Bearer sk-demo-") for r in requests[:3])
    assert requests[3].headers["x-api-key"].startswith("sk-ant-demo-")
    assert requests[3].json()["stream"] is True
    assert requests[1].json()["tools"][0]["function"]["name"] == "search"
    tool_message = requests[2].json()["messages"][-1]
    assert tool_message["role"] == "tool" and "17 million" in tool_message["content"]

    second = run_agent(fake)
    assert second.stdout == first.stdout
    assert [r.body for r in fake.requests[4:]] == [r.body for r in requests]


@pytest.mark.parametrize("how", ["env", "flag"])
def test_stale_run_goes_wrong_only_at_the_later_steps(fake, how):
    good = run_agent(fake)
    bad = run_agent(fake, "--stale") if how == "flag" else run_agent(fake, RESEARCH_AGENT_STALE="1")
    assert bad.returncode == 0, bad.stderr
    assert bad.stdout != good.stdout
    assert "2.1 million electric cars were sold worldwide in 2019" in bad.stdout
    good_requests, bad_requests = fake.requests[:4], fake.requests[4:]
    assert [r.headers["x-rewind-span"] for r in bad_requests] == SPANS
    same = [g.body == b.body for g, b in zip(good_requests, bad_requests, strict=True)]
    assert same == [
        True,
        True,
        False,
        False,
    ]  # plan and tool call identical; tool result on differs


def test_custom_query_from_input(fake):
    result = run_agent(
        fake, "--input", json.dumps({"query": "How much solar capacity was installed in 2024?"})
    )
    assert result.returncode == 0, result.stderr
    assert "550 GW" in result.stdout
    assert "Question: How much solar capacity was installed in 2024?" in result.stdout


def test_bad_input_is_a_usage_error(fake):
    result = run_agent(fake, "--input", "not json")
    assert result.returncode == 2
    assert "--input must be JSON" in result.stderr
    assert fake.request_count == 0


def test_a_provider_error_exits_1_naming_the_agent():
    with FakeLLM(faults=[None, "500"]) as fake:
        result = run_agent(fake)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "supervisor/researcher" in result.stderr and "HTTP 500" in result.stderr


def test_a_cut_writer_stream_exits_1():
    with FakeLLM(faults=[None, None, None, "cut"]) as fake:
        result = run_agent(fake)
    assert result.returncode == 1
    assert "supervisor/writer" in result.stderr


class _SearchHandler(BaseHTTPRequestHandler):
    queries: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        type(self).queries.append(self.path)
        body = json.dumps({"result": "Search API says: 42 million EVs on the road."}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def search_server() -> Iterator[str]:
    _SearchHandler.queries = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SearchHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/search"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_search_url_replaces_the_builtin_index(fake, search_server):
    result = run_agent(fake, SEARCH_URL=search_server)
    assert result.returncode == 0, result.stderr
    assert "Search API says: 42 million EVs on the road." in result.stdout
    (path,) = _SearchHandler.queries
    assert path.startswith("/search?q=How+many+electric+cars")


def test_local_search_picks_the_best_matching_fact():
    assert "2024" in research_agent.local_search("EV sales", stale=False)
    assert "2019" in research_agent.local_search("EV sales", stale=True)
    assert "Tokyo" in research_agent.local_search("population of Tokyo", stale=False)
    assert research_agent.local_search("recipe for bread", stale=False).startswith(
        "No indexed fact"
    )


def test_examples_symlink_points_at_the_agent():
    link = Path(__file__).resolve().parents[2] / "examples" / "research_agent.py"
    assert link.is_symlink()
    assert not Path(link.readlink()).is_absolute()  # relative, so it survives a clone
    assert link.resolve() == AGENT.resolve()
