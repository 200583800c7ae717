"""Grep tests: a key in every placement, recorded through the real proxy, is nowhere afterwards.

One session is recorded with ``rewind record`` against the real fake LLM and
a real HTTP tool (``--record-host``) that echoes what it was sent. Each
placement holds its own secret: a header, gateway headers, a query
parameter, a JSON body field, an echo in the response (body and header), the
command line and stdout. Then the bytes of every secret are searched for in
the store (every object, decompressed, and every plain file), a pushed bare
remote, an exported ``.rw`` (its zstd payload unpacked by git itself) and
both share modes: zero hits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import zstandard

from tests.e2e.conftest import run_rewind, upstream_env
from tests.security.conftest import SAMPLES

#: placement -> the secret placed there (plain values only the rules by name can catch, shaped ones too).
SECRETS = {
    "header": SAMPLES["openai"],  # Authorization: Bearer sk-proj-...
    "gateway": "portkeyPlainSecret-41d7c0a9e2",  # x-portkey-api-key
    "helicone": "heliconePlainSecret-8b21ff03c7",  # helicone-auth: Bearer ...
    "query": "queryPlainSecret-5e0a7b19d4",  # ?key=... to a tool host
    "body": "bodyPlainSecret-c93e1aa27f",  # {"api_key": ...}
    "nested": "nestedPlainSecret-77a0b3e5d1",  # {"metadata": {"auth": {"password": ...}}}
    "echo": "echoPlainSecret-2f6d9c4a80",  # x-tool-auth, echoed back by the tool in body and header
    "argv": "argvPlainSecret-0b9e4f7a21",  # rewind record -- python agent.py --api-key ...
    "argv_env": "argvEnvPlainSecret-6c1d8e2b5f",  # ... OPENAI_API_KEY=...
    "stdout_shape": SAMPLES["github"],  # printed by the agent
    "stdout_env": "stdoutPlainSecret-93b0e7c1a4",  # printed as ANTHROPIC_API_KEY=...
    "prompt": SAMPLES["google"],  # a key pasted into a prompt
}

AGENT = r'''
import json, os, sys, urllib.request
S = json.loads(os.environ["GREP_SECRETS"])
body = {"model": "gpt-4o-mini", "api_key": S["body"],
        "metadata": {"auth": {"password": S["nested"]}},
        "messages": [{"role": "user", "content": "my key is " + S["prompt"]}]}
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions",
                             data=json.dumps(body).encode(), method="POST",
                             headers={"content-type": "application/json", "authorization": "Bearer " + S["header"],
                                      "x-portkey-api-key": S["gateway"], "helicone-auth": "Bearer " + S["helicone"]})
answer = json.load(urllib.request.urlopen(req, timeout=30))
print("llm:", answer["choices"][0]["message"]["content"][:40])
tool = urllib.request.Request("http://search.example/search?q=ev&key=" + S["query"], headers={"x-tool-auth": S["echo"]})
with urllib.request.urlopen(tool, timeout=30) as r:
    print("tool:", r.status)  # (its body is stored without the echoed key, so replay differs there)
print("argv:", " ".join(sys.argv[1:]))
print("using", S["stdout_shape"])
print("ANTHROPIC_API_KEY=" + S["stdout_env"])
'''


class _EchoTool(BaseHTTPRequestHandler):
    """A tool that repeats what it was sent: the path (with its key) and its auth header."""

    def do_GET(self):  # noqa: N802
        auth = self.headers.get("x-tool-auth", "")
        body = json.dumps({"you asked": self.path, "with": auth}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", f"auth={auth}")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_tool():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoTool)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _objects(git_dir: Path) -> bytes:
    """Every object of a git directory, decompressed (loose and packed)."""
    return subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "--batch-all-objects", "--batch"],
                          capture_output=True, check=True).stdout


def _files(top: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file())


def _hits(where: str, data: bytes) -> list[str]:
    return [f"{where}: {placement}" for placement, secret in SECRETS.items() if secret.encode() in data]


def _unpack_rw(path: Path, into: Path) -> bytes:
    """The .rw's manifest and its pack's objects, unpacked by git (not by rewind's reader)."""
    raw = path.read_bytes()
    m = int.from_bytes(raw[12:16], "big")
    pack = zstandard.ZstdDecompressor().decompressobj().decompress(raw[96 + m:])
    assert pack[:4] == b"PACK"
    subprocess.run(["git", "init", "-q", "--bare", str(into)], check=True)
    subprocess.run(["git", "--git-dir", str(into), "unpack-objects", "-q"], input=pack, check=True)
    return raw[:96 + m] + pack + _objects(into)


def test_no_secret_survives_anywhere(tmp_path, fake, echo_tool):
    project = tmp_path / "project"
    project.mkdir()
    (project / "agent.py").write_text(AGENT)
    env = {**upstream_env(fake), "GREP_SECRETS": json.dumps(SECRETS)}
    assert run_rewind(["init"], project, env).returncode == 0
    rec = run_rewind(["record", "--name", "leaky", "--record-host", f"search.example={echo_tool}", "--",
                      sys.executable, "agent.py", "--api-key", SECRETS["argv"],
                      f"OPENAI_API_KEY={SECRETS['argv_env']}"], project, env)
    assert rec.returncode == 0, rec.stderr
    assert SECRETS["stdout_shape"] in rec.stdout  # the user's terminal still sees everything
    assert fake.request_count == 1
    sent = fake.requests[0]
    assert sent.headers.get("x-portkey-api-key") == SECRETS["gateway"]  # forwarded unchanged upstream
    rewind_dir = project / ".rewind"

    hits = _hits("store objects", _objects(rewind_dir)) + _hits("store files", _files(rewind_dir))

    remote = tmp_path / "team.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    push = run_rewind(["push", str(remote)], project, env)
    assert push.returncode == 0, push.stderr
    assert b"refs/sessions/" in subprocess.run(["git", "--git-dir", str(remote), "for-each-ref"],
                                               capture_output=True, check=True).stdout
    hits += _hits("pushed remote", _objects(remote) + _files(remote))

    rw = tmp_path / "leaky.rw"
    assert run_rewind(["export", "leaky", "-o", str(rw)], project, env).returncode == 0
    hits += _hits(".rw", _unpack_rw(rw, tmp_path / "unpacked.git"))

    for flags, name in (([], "safe.html"), (["--include-content"], "full.html")):
        share = run_rewind(["share", "leaky", "-o", str(tmp_path / name), *flags], project, env)
        assert share.returncode == 0, share.stderr
        hits += _hits(name, (tmp_path / name).read_bytes())

    assert hits == []
    full = (tmp_path / "full.html").read_bytes()
    assert b"REDACTED" in full  # the content is there, with markers where the keys were

    # replay matches the tool call whose URL held a key, with the tool and the provider gone. The
    # stored command line is redacted, so the secret-bearing command is given again after --.
    recorded = json.loads(run_rewind(["show", "leaky", "--json"], project, env).stdout or "{}")
    assert SECRETS["argv"] not in json.dumps(recorded)
    offline = {**env, "REWIND_UPSTREAM_OPENAI": "http://127.0.0.1:9"}
    rep = run_rewind(["replay", "leaky", "--", sys.executable, "agent.py", "--api-key", SECRETS["argv"],
                      f"OPENAI_API_KEY={SECRETS['argv_env']}"], project, offline)
    assert rep.returncode == 0, rep.stderr
    assert "0 misses" in rep.stderr and "output identical to the recording" in rep.stderr
    assert rep.stdout == rec.stdout
    plain = run_rewind(["replay", "leaky"], project, offline)  # the recorded (redacted) command
    assert "stored redacted; to run it with them, give the command after --" in plain.stderr
    assert SECRETS["argv"] not in plain.stdout + plain.stderr
    assert _hits("after replay", _objects(rewind_dir) + _files(rewind_dir)) == []
    assert os.listdir(rewind_dir / "journal") == []
