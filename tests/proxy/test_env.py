"""The child's environment, checked by running the official SDK in a real child process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.env import child_environment, upstreams_from_environment
from rewind_vcs.proxy.routes import Routes

CHILD = """
import openai
client = openai.OpenAI(api_key="sk-child", max_retries=0)
reply = client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "hi"}])
print(reply.choices[0].message.content)
"""


def test_child_environment_values():
    base = {"PATH": "/bin", "NO_PROXY": "corp.example, 127.0.0.1", "no_proxy": "other.example"}
    env = child_environment(base, 4321, "/r/bundle.pem")
    assert env["PATH"] == "/bin"
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:4321/openai/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:4321/anthropic"
    assert env["GOOGLE_GEMINI_BASE_URL"] == "http://127.0.0.1:4321/gemini"
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        assert env[name] == "http://127.0.0.1:4321"
    assert (
        env["NO_PROXY"] == env["no_proxy"] == "corp.example,127.0.0.1,other.example,localhost,::1"
    )
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        assert env[name] == "/r/bundle.pem"
    assert "OPENAI_BASE_URL" not in base  # the base mapping is not modified


def test_upstreams_from_environment():
    env = {
        "OPENAI_BASE_URL": "http://localhost:11434/v1/",
        "ANTHROPIC_BASE_URL": "https://gw.example/anthropic",
        "GOOGLE_GEMINI_BASE_URL": "",
    }
    assert upstreams_from_environment(env) == {
        "openai": "http://localhost:11434",
        "anthropic": "https://gw.example/anthropic",
    }
    assert upstreams_from_environment({}) == {}
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        upstreams_from_environment({"OPENAI_BASE_URL": "localhost:11434"})
    routes = Routes(upstreams_from_environment(env))
    route = routes.for_prefix("/openai/v1/chat/completions")
    assert (route.upstream, route.path) == ("http://localhost:11434", "/v1/chat/completions")


def _run_child(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_child_reaches_the_proxy_through_its_base_url(fake, make_proxy, ca, bundle):
    proxy = make_proxy(Routes({"openai": fake.url}), ca)
    env = child_environment(os.environ, proxy.port, bundle)
    result = _run_child(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from the fake"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.scheme == "http"
    assert exchange.request.path == "/v1/chat/completions"


def test_a_child_reaches_the_proxy_through_https_proxy_and_the_bundle(fake, make_proxy, ca, bundle):
    """No base URL: the SDK goes to https://api.openai.com through HTTPS_PROXY, trusting the bundle."""
    proxy = make_proxy(Routes({"openai": fake.url}), ca)
    env = child_environment(os.environ, proxy.port, bundle)
    del env["OPENAI_BASE_URL"]
    result = _run_child(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from the fake"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.scheme == "https"
    assert exchange.request.host == "api.openai.com"
