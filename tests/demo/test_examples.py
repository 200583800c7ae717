"""The examples/ agents on the official SDKs, run as child processes against the fake.

They read their base URLs only from the SDKs' standard environment variables,
which is what ``rewind record`` sets.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import child_env

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    ("script", "path", "answer"),
    [
        (
            "openai_agent.py",
            "/v1/chat/completions",
            'The get_weather tool returned: "Paris: 18°C, light rain"',
        ),
        (
            "anthropic_agent.py",
            "/v1/messages",
            'The get_weather tool returned: "Tokyo: 24°C, sunny"',
        ),
        (
            "gemini_agent.py",
            "/v1/models/gemini-2.5-flash:generateContent",
            'The get_weather tool returned: "Lima: 16°C, overcast"',
        ),
    ],
)
def test_python_sdk_example_runs_its_tool_loop(fake, script, path, answer):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=child_env(fake),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == answer
    assert [r.path for r in fake.requests] == [path, path]


def test_node_example_streams_its_tool_loop(fake, tmp_path, node_openai):
    # Run a copy beside a link to the install: an ES module resolves packages from its own folder.
    script = tmp_path / "node_agent.mjs"
    shutil.copyfile(EXAMPLES / "node_agent.mjs", script)
    (tmp_path / "node_modules").symlink_to(node_openai, target_is_directory=True)
    fake.chunk_delay = 0.001
    result = subprocess.run(
        ["node", str(script)],
        env=child_env(fake),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'The get_weather tool returned: "Paris: 18°C, light rain"'
    requests = fake.requests
    assert [r.path for r in requests] == ["/v1/chat/completions"] * 2
    assert requests[0].headers["user-agent"].startswith("OpenAI/JS")
    assert all(r.json()["stream"] is True for r in requests)
