"""Shared samples for the security suite: one realistic secret of every shape rewind knows.

The values are made up, shaped like real keys (prefix, length, alphabet), so
the scanner must find them; each test greps for the exact bytes afterwards.
"""

from __future__ import annotations

import pytest

#: kind -> a sample secret of that shape (what the scanner must replace with [REDACTED:kind]).
SAMPLES: dict[str, str] = {
    "openai": "sk-proj-Zq9vX2LmN4bT7cR1yW8kP3sD6fG0hJ5aU_eQiOo",
    "anthropic": "sk-ant-api03-Xy7Kq2Pw9Lm4Nb6Vc1Rt8Sd3Fg5Hj0Ak-AAAA",
    "google": "AIzaSyD3fG5hJ7kL9zX1cV3bN5mQ7wE9rT1yU3i",
    "aws": "AKIAIOSFODNN7REWIND1",
    "github": "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5",
    "slack": "xoxb-123456789012-abcdefGHIJKL",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZXdpbmQtdGVzdCJ9.kT3x9YqL2mN8pR4sV6wZ1aB3cD5eF7gH",
}
#: A secret with no known shape: only the rules by name (header, parameter, field, flag) catch it.
PLAIN_SECRET = "plainSecretValue-7f3a9c2e41"


@pytest.fixture
def samples() -> dict[str, str]:
    return dict(SAMPLES)


@pytest.fixture
def fake():
    """The real fake LLM server on loopback (as tests/e2e use it)."""
    from rewind_vcs.testing import FakeLLM

    with FakeLLM() as server:
        yield server
