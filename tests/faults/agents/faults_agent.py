"""An agent on the official SDKs that meets one upstream fault, then makes a normal call.

Usage: python faults_agent.py MODE
  hangup          stream, read two pieces, hang up (close the stream mid-way)
  proxy-timeout   the upstream never answers; rewind's REWIND_UPSTREAM_TIMEOUT fires first
  client-timeout  the upstream never answers; the SDK's own timeout fires first
  cut             the upstream drops the connection in the middle of a stream
  providers       429 / 500 / reset from Anthropic and Gemini
Every line it prints is deterministic, so a replay must print the same bytes.
"""

from __future__ import annotations

import sys

KEY = "sk-test-SECRET-0123456789"
FAULT = "x-fake-fault"


def openai_client(**options):
    import openai

    return openai.OpenAI(api_key=KEY, max_retries=0, **options)


def after(client) -> None:
    """The proxy keeps serving: the next call of the same run works."""
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "next call"}])
    print("next:", r.choices[0].message.content.splitlines()[-1])


def failed(what: str, exc: BaseException) -> None:
    print(what, type(exc).__module__.split(".")[0], type(exc).__name__, getattr(exc, "status_code", None))


def hangup() -> None:
    client = openai_client()
    stream = client.chat.completions.create(
        model="gpt-4o-mini", stream=True, extra_headers={FAULT: "slow"},
        messages=[{"role": "user", "content": "tell me a long story about a lighthouse keeper " * 2}])
    pieces = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            if len(pieces) == 2:
                break
    stream.close()  # hang up mid-stream: the connection is closed with the body unread
    print("read before hanging up:", repr("".join(pieces)))
    after(client)


def timeout(client_timeout: float) -> None:
    import openai

    client = openai_client(timeout=client_timeout)
    try:
        client.chat.completions.create(model="gpt-4o-mini", extra_headers={FAULT: "hang"},
                                       messages=[{"role": "user", "content": "never answered"}])
        print("hang: no error")
    except openai.APIError as exc:
        failed("hang:", exc)
    after(openai_client())


def cut() -> None:
    client = openai_client()
    pieces = []
    try:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", stream=True, extra_headers={FAULT: "cut"},
            messages=[{"role": "user", "content": "a stream the upstream drops half way through"}])
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
        print("cut: no error")
    except Exception as exc:  # noqa: BLE001 - the class is what we print
        failed("cut:", exc)
    print("read before the cut:", repr("".join(pieces)))
    after(client)


def providers() -> None:
    import anthropic
    from google import genai
    from google.genai import errors, types

    ac = anthropic.Anthropic(api_key=KEY, max_retries=0)
    for fault in ("429", "500", "reset"):
        try:
            ac.messages.create(model="claude-haiku-4-5", max_tokens=50, extra_headers={FAULT: fault},
                               messages=[{"role": "user", "content": f"anthropic {fault}"}])
            print("anthropic", fault, "no error")
        except anthropic.APIError as exc:
            failed(f"anthropic {fault}:", exc)
    gc = genai.Client(api_key=KEY, http_options=types.HttpOptions(retry_options=None))
    for fault in ("429", "500"):
        try:
            gc.models.generate_content(model="gemini-2.5-flash", contents=f"gemini {fault}",
                                       config=types.GenerateContentConfig(http_options=types.HttpOptions(
                                           headers={FAULT: fault})))
            print("gemini", fault, "no error")
        except errors.APIError as exc:
            print(f"gemini {fault}:", type(exc).__name__, exc.code, exc.status)
    r = gc.models.generate_content(model="gemini-2.5-flash", contents="gemini after the errors")
    print("gemini next:", r.text.splitlines()[-1])
    m = ac.messages.create(model="claude-haiku-4-5", max_tokens=50,
                           messages=[{"role": "user", "content": "anthropic after the errors"}])
    print("anthropic next:", m.content[0].text.splitlines()[-1])


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "hangup":
        hangup()
    elif mode == "proxy-timeout":
        timeout(client_timeout=20.0)
    elif mode == "client-timeout":
        timeout(client_timeout=0.5)
    elif mode == "cut":
        cut()
    elif mode == "providers":
        providers()
    else:
        raise SystemExit(f"unknown mode {mode}")
