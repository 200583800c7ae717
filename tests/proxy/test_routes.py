"""Routes: provider prefixes, provider and record hosts, upstream overrides."""

from __future__ import annotations

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.routes import Route, Routes, Upstream


def test_base_url_prefixes():
    routes = Routes()
    assert routes.for_prefix("/openai/v1/chat/completions") == Route(
        "openai", "https://api.openai.com:443", "/v1/chat/completions", "api.openai.com"
    )
    assert routes.for_prefix("/anthropic/v1/messages").provider == "anthropic"
    gemini = routes.for_prefix("/gemini/v1beta/models/g:streamGenerateContent?alt=sse")
    assert gemini.path == "/v1beta/models/g:streamGenerateContent?alt=sse"
    assert gemini.upstream == "https://generativelanguage.googleapis.com:443"
    assert routes.for_prefix("/openai?x=1").path == "/?x=1"
    assert routes.for_prefix("/openai").path == "/"
    assert routes.for_prefix("/openaiX/v1") is None
    assert routes.for_prefix("/v1/chat/completions") is None
    assert routes.for_prefix("*") is None


def test_override_replaces_scheme_host_port_and_keeps_the_path():
    routes = Routes(
        {"openai": "http://127.0.0.1:9999", "anthropic": "https://gw.example/anthropic/"}
    )
    openai = routes.for_prefix("/openai/v1/embeddings")
    assert openai.upstream == "http://127.0.0.1:9999"
    assert openai.path == "/v1/embeddings"
    assert openai.host == "127.0.0.1:9999"
    assert (
        routes.for_prefix("/anthropic/v1/messages").upstream == "https://gw.example:443/anthropic"
    )
    # the real host, reached through an intercepted tunnel, goes to the override too
    assert (
        routes.for_host("https", "api.openai.com", 443, "/v1/x").upstream == "http://127.0.0.1:9999"
    )


def test_hosts():
    routes = Routes(
        record_hosts={"api.search.test": "http://127.0.0.1:8000", "tools.example": None}
    )
    assert routes.intercept_hosts() == {
        "api.openai.com",
        "api.anthropic.com",
        "generativelanguage.googleapis.com",
        "api.search.test",
        "tools.example",
    }
    assert routes.for_host("https", "API.Anthropic.com", 443, "/v1/messages") == Route(
        "anthropic", "https://api.anthropic.com:443", "/v1/messages", "api.anthropic.com"
    )
    search = routes.for_host("http", "api.search.test", 80, "/q?x=1")
    assert search == Route(None, "http://127.0.0.1:8000", "/q?x=1", "api.search.test")
    tools = routes.for_host("https", "tools.example", 8443, "/")
    assert tools == Route(None, "https://tools.example:8443", "/", "tools.example:8443")
    assert Routes(record_hosts=["a.example"]).intercept_hosts() >= {"a.example"}


def test_bad_configuration():
    with pytest.raises(ConfigError):
        Routes({"mistral": "http://127.0.0.1:1"})
    for bad in ("ftp://x", "127.0.0.1:8080", "http://", "http://h:99999", "http://h/?q=1"):
        with pytest.raises(ConfigError):
            Upstream.parse(bad)
    with pytest.raises(ConfigError):
        Routes(record_hosts={"http://x/y": None})


def test_upstream_forms():
    up = Upstream.parse("HTTP://[::1]:8080/base/")
    assert (up.scheme, up.host, up.port, up.prefix) == ("http", "::1", 8080, "/base")
    assert up.authority == "[::1]:8080"
    assert up.url == "http://[::1]:8080/base"
    assert Upstream.parse("https://api.openai.com").authority == "api.openai.com"


# route_request: the routing decision as a pure function ---------------------------------


def _route(target: str, tunnel=None, intercept=frozenset({"api.openai.com", "api.search.test"})):
    from rewind_vcs.proxy.routes import route_request

    routes = Routes({"openai": "http://127.0.0.1:9999"}, record_hosts={"api.search.test": None})
    return route_request(routes, target, tunnel=tunnel, self_port=8080, intercept_hosts=intercept)


def test_route_request_modes():
    from rewind_vcs.proxy.routes import Mode

    base = _route("/openai/v1/chat/completions")
    assert (base.mode, base.scheme, base.route.provider) == (Mode.BASE_URL, "http", "openai")
    assert base.route.upstream == "http://127.0.0.1:9999" and base.route.path == "/v1/chat/completions"
    assert _route("/nope/v1").route is None and _route("/nope/v1").mode is Mode.BASE_URL
    # absolute-form for the proxy itself is base-URL mode
    for target in ("http://127.0.0.1:8080/openai/v1/x", "http://LOCALHOST:8080/openai/v1/x",
                   "http://[::1]:8080/openai/v1/x"):
        assert _route(target).mode is Mode.BASE_URL, target
    intercepted = _route("http://API.openai.com/v1/chat/completions?a=1")
    assert intercepted.mode is Mode.INTERCEPTED and intercepted.route.provider == "openai"
    assert intercepted.route.path == "/v1/chat/completions?a=1" and intercepted.route.host == "api.openai.com"
    assert (intercepted.target_host, intercepted.target_port) == ("api.openai.com", 80)
    record = _route("http://api.search.test:8000/q")
    assert record.mode is Mode.INTERCEPTED and record.route.upstream == "http://api.search.test:8000"
    other = _route("http://127.0.0.1:6379/")
    assert other.mode is Mode.PASSTHROUGH and (other.target_host, other.target_port) == ("127.0.0.1", 6379)
    tunnelled = _route("/v1/messages", tunnel=("api.anthropic.com", 443))
    assert (tunnelled.mode, tunnelled.scheme, tunnelled.route.provider) == (Mode.INTERCEPTED, "https", "anthropic")


@pytest.mark.parametrize("target", ["http:///v1", "http://[::1/x", "http://[zz]:80/x",
                                    "http://api.openai.com:99999/v1"])
def test_route_request_refuses_bad_targets(target):
    from rewind_vcs.proxy.routes import BadTarget

    with pytest.raises(BadTarget):
        _route(target)
