"""A replay miss whose request quotes hostile text: the agent gets rewind's clear 400 (not a 502 from a
markup crash in the message printer), and rewind's own lines on stderr hold no raw control character."""

from __future__ import annotations

import sys

from tests.e2e.conftest import agent, fake, offline_env, run_rewind, upstream_env, workdir  # noqa: F401
from tests.security.test_terminal_output import FORBIDDEN

PROMPT = "[/INST] \x1b[31mred\x1b[0m \x1b]8;;https://evil.example/\x07x\x1b]8;;\x07 \u202etxt.exe [link=https://e]y[/link]"


def test_a_miss_quoting_hostile_text_is_a_clean_400_and_an_inert_line(workdir, fake):  # noqa: F811
    rec = run_rewind(["record", "--name", "q", "--", sys.executable, agent("sdk_agent.py"), "anthropic",
                      "What is the capital of France?"], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    fake.stop()
    rep = run_rewind(["replay", "q", "--", sys.executable, agent("sdk_agent.py"), "anthropic", PROMPT],
                     workdir, offline_env())
    assert rep.returncode != 0
    assert "BadRequestError" in rep.stderr or "400" in rep.stderr, rep.stderr[-2000:]
    assert "502" not in rep.stderr and "internal error" not in rep.stderr
    ours = [ln for ln in rep.stderr.splitlines() if ln.startswith("rewind")]
    miss = next(ln for ln in ours if ln.startswith("rewind replay: no recorded step"))
    assert "closest is step 1" in miss and "'[/INST] \\x1b[31mred\\x1b[0m" in miss, miss
    for line in ours:
        assert not FORBIDDEN.search(line), line
