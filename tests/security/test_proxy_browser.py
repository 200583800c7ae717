"""A hostile web page in the user's browser cannot use the proxy (DNS rebinding, cross-site requests).

A page can send a "simple" POST to http://127.0.0.1:PORT without a CORS
preflight, and a page whose name was rebound to 127.0.0.1 can even read the
answers. Before, both were forwarded upstream with the user's environment
and recorded. The requests below carry the headers a browser sends for
``fetch(url, {method: "POST", mode: "no-cors", body})``.
"""

from __future__ import annotations

import pytest

from rewind_vcs.proxy import access

from .proxy_helpers import raw, running_proxy, status_of

BODY = b'{"model": "gpt-fake", "messages": [{"role": "user", "content": "exfiltrate"}]}'


def browser_post(port: int, host: str, extra: dict[str, str]) -> tuple[int | None, bytes]:
    headers = {
        "Host": host,
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        "Accept": "*/*",
        "Content-Type": "text/plain;charset=UTF-8",
        "Sec-Fetch-Dest": "empty",
        "Sec-Fetch-Mode": "no-cors",
        **extra,
        "Content-Length": str(len(BODY)),
        "Connection": "close",
    }
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    answer, _ = raw(port, f"POST /openai/v1/chat/completions HTTP/1.1\r\n{head}\r\n".encode() + BODY)
    return status_of(answer), answer


@pytest.mark.parametrize(
    "who",
    ["cross-site page", "same-site page", "page without fetch metadata", "sandboxed page",
     "dns rebinding", "rebinding without metadata", "foreign host header"],
)
def test_web_page_requests_are_refused_not_forwarded_nor_recorded(who):
    with running_proxy() as proxy:
        me = f"127.0.0.1:{proxy.port}"
        cases = {
            "cross-site page": (me, {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}),
            "same-site page": (me, {"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}),
            "page without fetch metadata": (me, {"Origin": "https://evil.example"}),
            "sandboxed page": (me, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}),
            # evil.example now resolves to 127.0.0.1: the browser thinks it is same-origin
            "dns rebinding": (f"evil.example:{proxy.port}",
                              {"Origin": f"http://evil.example:{proxy.port}", "Sec-Fetch-Site": "same-origin"}),
            "rebinding without metadata": (f"evil.example:{proxy.port}", {}),
            "foreign host header": ("api.openai.com", {}),
        }
        host, extra = cases[who]
        status, answer = browser_post(proxy.port, host, extra)
        assert status == 403, answer[:300]
        assert b"rewind proxy: refused" in answer
        assert proxy.fake.requests == []  # never forwarded
        assert proxy.exchanges == []  # never recorded
        assert proxy.agent_call() == "Hello from the fake"  # the agent is not affected


def test_the_proxys_own_names_and_non_browser_clients_are_served():
    with running_proxy() as proxy:
        for host in (f"127.0.0.1:{proxy.port}", f"localhost:{proxy.port}", f"[::1]:{proxy.port}",
                     f"LOCALHOST:{proxy.port}"):
            status, answer = browser_post(proxy.port, host, {})
            assert status == 200, (host, answer[:300])
        # a page served by the proxy's own origin, or a URL the user typed, is not cross-site
        status, _ = browser_post(proxy.port, f"localhost:{proxy.port}",
                                 {"Origin": f"http://localhost:{proxy.port}", "Sec-Fetch-Site": "same-origin"})
        assert status == 200
        status, _ = browser_post(proxy.port, f"localhost:{proxy.port}", {"Sec-Fetch-Site": "none"})
        assert status == 200
        assert len(proxy.fake.requests) == 6


def test_absolute_form_for_the_proxy_itself_is_checked_too():
    with running_proxy() as proxy:
        answer, _ = raw(proxy.port, (
            f"POST http://127.0.0.1:{proxy.port}/openai/v1/chat/completions HTTP/1.1\r\n"
            f"Host: evil.example:{proxy.port}\r\nContent-Length: 2\r\n\r\n{{}}").encode())
        assert status_of(answer) == 403
        assert proxy.fake.requests == []


def test_base_url_policy():
    assert access.base_url_refusal(8080, "127.0.0.1:8080", None, None) is None
    assert access.base_url_refusal(8080, None, None, None) is None  # HTTP/1.0, no Host: not a browser
    assert access.base_url_refusal(8080, "127.0.0.1:8081", None, None) is not None
    assert access.base_url_refusal(8080, "127.0.0.1", None, None) is not None
    assert access.base_url_refusal(8080, "localhost:8080", "http://[::1]:8080", "same-origin") is None
    assert access.base_url_refusal(8080, "localhost:8080", None, "cross-site") is not None
    assert access.base_url_refusal(8080, "localhost:8080", "https://localhost:8080", None) is not None
