"""`rewind demo && rewind show latest` works as written: no API key, no network."""

from __future__ import annotations

import json
import os


def test_demo_then_show_latest(rewind, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "HTTPS_PROXY": "http://127.0.0.1:9"})  # ignored
    demo = rewind("demo", env=env, timeout=120)
    assert demo.returncode == 0, demo.stderr
    assert "output identical to the recording" in demo.stderr and "Try next" in demo.stderr
    sessions = json.loads(rewind("log", "--json", check=True).stdout)
    assert [s["name"] for s in sessions] == ["research-stale", "research-good"]
    assert all(s["steps"] == 4 and s["status"] == "ok" for s in sessions)
    shown = rewind("show", "latest", check=True).stdout
    for word in ("supervisor", "researcher", "writer", "gpt-4o-mini", "claude-haiku-4-5", "search("):
        assert word in shown
    tags = {t["name"] for t in json.loads(rewind("tag", "--json", check=True).stdout)}
    assert tags == {"good", "bad"}
    # no CA private key in the project (the demo's CA lives in memory; rewind init's, per user)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and b"PRIVATE KEY" in p.read_bytes()]
    again = rewind("demo", env=env, timeout=120)  # a second demo adds two more sessions
    assert again.returncode == 0, again.stderr
    assert len(json.loads(rewind("log", "--json", check=True).stdout)) == 4
