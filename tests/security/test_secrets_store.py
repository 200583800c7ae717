"""The writer is the last choke point: whatever a caller (or a pre-step hook) hands it, no key is stored."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace

from rewind_vcs.store.records import EndInfo, Exchange, Request, Response, SessionInfo
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from tests.factories import info
from tests.security.conftest import PLAIN_SECRET, SAMPLES


def all_objects(rewind_dir) -> bytes:
    """Every object of the repository, loose or packed, as ``git cat-file`` prints it."""
    return subprocess.run(["git", "--git-dir", str(rewind_dir), "cat-file", "--batch-all-objects", "--batch"],
                          capture_output=True, check=True).stdout


def test_command_line_messages_steps_and_stdout_are_redacted_by_the_writer(tmp_path):
    repo = Repo.init(tmp_path)
    key = SAMPLES["openai"]
    command = ["curl", "-H", f"Authorization: Bearer {key}", "--api-key", PLAIN_SECRET,
               f"https://tool.example/?key={PLAIN_SECRET}"]
    w = SessionWriter.create(repo, SessionInfo(command=command, cwd=str(tmp_path), extra={"note": key}))
    request = Request("POST", "https", "api.openai.com", f"/v1/chat/completions?key={PLAIN_SECRET}",
                      [("authorization", f"Bearer {key}"), ("x-portkey-api-key", PLAIN_SECRET)],
                      b'{"model": "m", "api_key": "%s", "messages": []}' % PLAIN_SECRET.encode())
    body = b'{"echo": "%s", "k": "%s"}' % (PLAIN_SECRET.encode(), SAMPLES["github"].encode())
    response = Response(200, "OK", [("content-type", "application/json"), ("content-length", str(len(body)))],
                        body, [(0.01, len(body))])
    step = replace(info(summary=f"called /v1/chat/completions?key={PLAIN_SECRET} with {key}"),
                   error=f"bad key {SAMPLES['anthropic']}")
    w.append(Exchange(request, response, time.time(), 0.1), step)
    w.finish(EndInfo(exit_code=0, stdout=f"token {SAMPLES['slack']}\nOPENAI_API_KEY={PLAIN_SECRET}\n".encode()))

    stored = all_objects(repo.path)
    for secret in (key, PLAIN_SECRET, *SAMPLES.values()):
        assert secret.encode() not in stored, secret
    session = repo.session(w.id)
    assert session.info.command[:3] == ["curl", "-H", "Authorization: [REDACTED:header]"]
    (s1,) = session.timeline("main").steps
    assert s1.response.header("content-length") == str(len(s1.response.body))
    assert b"[REDACTED:echo]" in s1.response.body and b"[REDACTED:github]" in s1.response.body
