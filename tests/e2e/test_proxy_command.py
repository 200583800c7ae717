"""`rewind proxy` for clients started elsewhere, `--record-host` for HTTP tools, gateways in the env."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewind_vcs.store.repo import Repo
from tests.e2e.conftest import run_rewind, upstream_env

KEY = "sk-test-SECRET-never-stored-0123456789"


def test_proxy_command_records_one_session_per_tag_and_finishes_on_ctrl_c(workdir, fake):
    from openai import OpenAI

    proc = subprocess.Popen([sys.executable, "-m", "rewind_vcs", "proxy", "--port", "0"], cwd=workdir,
                            env=upstream_env(fake), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        exports = {}
        while len(exports) < 8:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            key, _, value = line.strip().removeprefix("export ").partition("=")
            exports[key] = value
        base = exports["OPENAI_BASE_URL"]
        for tag, q in (("alice", "one"), ("bob", "two"), ("alice", "three")):
            client = OpenAI(api_key=KEY, base_url=base, max_retries=0, default_headers={"X-Rewind-Session": tag})
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": q}])
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "recorded session" in err
    by_name = {s.name: s for s in Repo.open(workdir).sessions()}
    assert by_name["alice"].steps == 2 and by_name["bob"].steps == 1
    assert all(r.headers.get("x-rewind-session") is None for r in fake.requests)  # stripped before forwarding


class _Tool(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"result": f"found {self.path}"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def tool_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tool)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_record_host_records_an_http_tool_as_a_tool_step(workdir, fake, tool_server):
    script = workdir / "tool_agent.py"
    script.write_text(
        "import urllib.request\n"
        "print(urllib.request.urlopen('http://search.example/search?q=ev+sales', timeout=10).read().decode())\n"
    )
    rec = run_rewind(["record", "--name", "tool", "--record-host", f"search.example={tool_server}", "--",
                      sys.executable, str(script)], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    assert "found /search?q=ev+sales" in rec.stdout
    step = Repo.open(workdir).timeline("tool").step(1)
    assert step.info.kind.value == "tool" and step.info.provider == "generic"
    assert step.request.host == "search.example"
    rep = run_rewind(["replay", "tool"], workdir, upstream_env(fake))
    assert rep.returncode == 0 and rep.stdout == rec.stdout


def test_a_base_url_in_the_users_env_becomes_the_upstream(workdir, fake):
    """A gateway the user already configured keeps working, and is recorded (not bypassed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "REWIND_UPSTREAM"))}
    env["OPENAI_BASE_URL"] = fake.url + "/v1"
    script = workdir / "gw.py"
    script.write_text(
        "from openai import OpenAI\n"
        f"c = OpenAI(api_key={KEY!r}, max_retries=0)\n"
        "print(c.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'gw'}])"
        ".choices[0].message.content)\n"
    )
    rec = run_rewind(["record", "--name", "gw", "--", sys.executable, str(script)], workdir, env)
    assert rec.returncode == 0, rec.stderr
    assert fake.request_count == 1
    assert len(Repo.open(workdir).timeline("gw").steps) == 1
