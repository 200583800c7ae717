"""The secret scanner and the redaction rules, in-process: every shape, every placement."""

from __future__ import annotations

import json
import time

import pytest

from rewind_vcs.store import secrets
from rewind_vcs.store.records import Exchange, Request, Response
from rewind_vcs.store.redact import (
    redact_argv,
    redact_body,
    redact_exchange,
    redact_headers,
    redact_message,
    redact_output,
    redact_path,
)
from tests.security.conftest import PLAIN_SECRET, SAMPLES


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_known_shape_is_replaced_by_its_marker(kind):
    key = SAMPLES[kind]
    for text in (key, f"the key is {key}.", f'{{"k": "{key}"}}', f"line\\n{key}\\n"):
        out = secrets.redact_text(text)
        assert key not in out
        assert f"[REDACTED:{kind}]" in out
        assert secrets.redact_text(out) == out  # idempotent: a marker matches no rule


def test_aws_secret_key_bearer_and_private_key_blocks():
    aws = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYREWINDKEY1"
    assert secrets.redact_text(aws) == "aws_secret_access_key = [REDACTED:aws-secret]"
    assert secrets.redact_text('"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYREWINDKEY1"').count(
        "[REDACTED:aws-secret]") == 1
    assert secrets.redact_text("Authorization: Bearer abc.def-123") == "Authorization: Bearer [REDACTED:bearer]"
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBx\n-----END EC PRIVATE KEY-----"
    assert secrets.redact_text(f"x{pem}y") == "x[REDACTED:private-key]y"


@pytest.mark.parametrize("prose", [
    "the task-force and a risk-assessment-framework-document",
    "use sk-learn-pipelines-for-everything-here",  # no digit: prose, not a key
    "the bearer of bad news",
    "max_tokens=100 and the total_tokens field",
    '{"logprobs": [{"token": "Hello", "logprob": -0.1}]}',
    "AKIA is a prefix, AIza too",
])
def test_prose_is_left_alone(prose):
    assert secrets.redact_text(prose) == prose
    assert redact_body(prose.encode())[0] == prose.encode()


def test_command_line_flags_headers_variables_and_urls():
    key = SAMPLES["openai"]
    argv = ["curl", "-H", f"Authorization: Bearer {key}", f"-Hx-api-key: {PLAIN_SECRET}",
            f"--header=helicone-auth: {PLAIN_SECRET}", "--api-key", PLAIN_SECRET, f"--token={PLAIN_SECRET}",
            f"OPENAI_API_KEY={PLAIN_SECRET}", f"https://tool.example/s?q=1&key={PLAIN_SECRET}",
            "--max-tokens", "5", "sh", "-c", f"curl -H 'x-portkey-api-key: {PLAIN_SECRET}' "
            f"https://a.example/?token={PLAIN_SECRET} --password {PLAIN_SECRET}"]
    out = redact_argv(argv)
    joined = "\0".join(out)
    assert key not in joined and PLAIN_SECRET not in joined
    assert out[:2] == ["curl", "-H"] and out[2] == "Authorization: [REDACTED:header]"
    assert "--max-tokens\0005" in joined  # an ordinary numeric flag is kept
    assert "https://tool.example/s?q=1&key=[REDACTED:param]" in out
    assert redact_argv(out) == out


def test_stdout_and_messages():
    key = SAMPLES["anthropic"]
    out = redact_output(f"export ANTHROPIC_API_KEY={PLAIN_SECRET}\nusing {key}\n".encode())
    assert PLAIN_SECRET.encode() not in out and key.encode() not in out
    assert redact_message(f"session: curl -H 'Authorization: Bearer {PLAIN_SECRET}'") == \
        "session: curl -H 'Authorization: Bearer [REDACTED:bearer]'"


def test_headers_by_name_gateways_and_suffixes():
    headers = [("Authorization", "Bearer x"), ("x-portkey-api-key", PLAIN_SECRET), ("Helicone-Auth", "Bearer y"),
               ("x-custom-token", "t"), ("x-acme-secret", "s"), ("x-my-auth", "a"), ("Cookie", "c=1"),
               ("x-ratelimit-remaining-tokens", "99"), ("content-type", "application/json"),
               ("x-note", f"key {SAMPLES['github']}"), ("x-mine", "m")]
    out = redact_headers(headers, ["x-mine"])
    assert out == [("x-ratelimit-remaining-tokens", "99"), ("content-type", "application/json"),
                   ("x-note", "key [REDACTED:github]")]


def test_query_parameters():
    assert redact_path(f"/v1/x?key={PLAIN_SECRET}&q=2&apikey=a&api-key=b&access_token=c&token=d") == "/v1/x?q=2"
    assert redact_path("/search?q=ev+sales") == "/search?q=ev+sales"
    assert redact_path(f"/p/{SAMPLES['google']}") == "/p/[REDACTED:google]"


def test_json_fields_at_any_depth_and_inside_json_strings():
    body = json.dumps({
        "model": "m", "api_key": PLAIN_SECRET, "nested": {"deeper": [{"apiKey": PLAIN_SECRET}]},
        "auth": {"password": PLAIN_SECRET, "secret": PLAIN_SECRET, "token": PLAIN_SECRET},
        "tool_args": json.dumps({"client_secret": PLAIN_SECRET}),
        "usage": {"total_tokens": 5}, "logprobs": [{"token": "Hi"}],
    }).encode()
    out, spans = redact_body(body)
    assert PLAIN_SECRET.encode() not in out
    doc = json.loads(out)  # still valid JSON, same shape
    assert doc["api_key"] == "[REDACTED:field]" and doc["nested"]["deeper"][0]["apiKey"] == "[REDACTED:field]"
    assert doc["usage"] == {"total_tokens": 5} and doc["logprobs"] == [{"token": "Hi"}]
    assert json.loads(doc["tool_args"]) == {"client_secret": "[REDACTED:field]"}
    assert len(spans) == 6


def test_extra_names_from_config_apply_to_headers_params_and_fields():
    body = json.dumps({"session_key": PLAIN_SECRET}).encode()
    assert PLAIN_SECRET.encode() not in redact_body(body, ["session_key"])[0]
    assert redact_path(f"/x?session_key={PLAIN_SECRET}", ["session_key"]) == "/x"


def _exchange(request: Request, response: Response) -> Exchange:
    return Exchange(request=request, response=response, started_at=time.time(), duration=0.1)


def test_an_echoed_secret_is_dropped_from_the_response_and_framing_still_fits():
    req = Request("POST", "https", "gw.example", f"/v1/run?key={PLAIN_SECRET}",
                  [("helicone-auth", f"Bearer {PLAIN_SECRET}X"), ("content-type", "application/json")],
                  json.dumps({"password": "hunter2hunter2"}).encode())
    pieces = [b'data: {"you sent": "', f"{PLAIN_SECRET}".encode(), b'", "and": "hunter2hunter2"}\n\n',
              f"data: {PLAIN_SECRET}X\n\n".encode()]
    body = b"".join(pieces)
    resp = Response(200, "OK", [("content-type", "text/event-stream"), ("content-length", str(len(body))),
                                ("x-echo", f"got {PLAIN_SECRET}")], body,
                    chunks=[(0.01 * i, len(p)) for i, p in enumerate(pieces)])
    clean = redact_exchange(_exchange(req, resp))
    stored = repr(clean).encode()
    assert PLAIN_SECRET.encode() not in stored and b"hunter2hunter2" not in stored
    out = clean.response
    assert [k for k, _ in out.headers] == ["content-type", "content-length"]
    assert dict(out.headers)["content-length"] == str(len(out.body))
    assert sum(n for _, n in out.chunks) == len(out.body) and len(out.chunks) == 4
    assert out.body.split(b"\n\n")[0] == b'data: {"you sent": "[REDACTED:echo]", "and": "[REDACTED:echo]"}'
    assert redact_exchange(clean) == clean  # idempotent (the writer runs it again)


def test_a_10mb_body_is_scanned_fast():
    words = b"the model answered with some tokens about a task-force and its risk-assessment; "
    body = b'{"messages": [{"role": "user", "content": "' + words * (10_000_000 // len(words)) + b'"}]}'
    body = body.replace(b"answered", SAMPLES["openai"].encode(), 1)
    best = min(_timed(lambda: redact_body(body)) for _ in range(2))
    out = redact_body(body)[0]
    assert SAMPLES["openai"].encode() not in out
    assert len(body) / best > 5e6, f"{len(body) / best / 1e6:.1f} MB/s"  # measured ~100 MB/s idle


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
