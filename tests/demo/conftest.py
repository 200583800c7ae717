"""Fixtures for the demo tests: a running fake provider and SDK clients pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from rewind_vcs.testing.fake_llm import FakeLLM

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def openai_client(fake: FakeLLM) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(
        base_url=fake.openai_base_url, api_key="sk-test", max_retries=0, timeout=10
    )
    yield client
    client.close()


@pytest.fixture
def anthropic_client(fake: FakeLLM) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(
        base_url=fake.url, api_key="sk-ant-test", max_retries=0, timeout=10
    )
    yield client
    client.close()


def make_gemini_client(fake: FakeLLM, api_version: str | None = None) -> genai.Client:
    options = genai_types.HttpOptions(
        base_url=fake.url,
        api_version=api_version,
        timeout=10_000,
        retry_options=genai_types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(api_key="gemini-test-key", http_options=options)


@pytest.fixture
def gemini_client(fake: FakeLLM) -> genai.Client:
    return make_gemini_client(fake)


def child_env(fake: FakeLLM, **extra: str) -> dict[str, str]:
    """The environment for an agent run as a child process against ``fake``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _PROXY_VARIABLES and not key.startswith("RESEARCH_AGENT_")
    }
    env.update(fake.base_url_env())
    env.pop("SEARCH_URL", None)
    env.update(extra)
    return env
