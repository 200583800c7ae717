"""A few finished calls, then one slow stream (the fake's ``slow`` fault): the recorder is killed mid-stream.

Prints its pid first, one line per finished call, and one line per streamed
piece, all flushed, so the test knows exactly where the run is.
"""

from __future__ import annotations

import os

from openai import OpenAI

print("agent pid", os.getpid(), flush=True)
client = OpenAI(api_key="sk-test-SECRET-0123456789", max_retries=0)
for i in range(3):
    r = client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": f"finished call {i}"}])
    print("finished", i, r.choices[0].message.content.splitlines()[-1], flush=True)
stream = client.chat.completions.create(
    model="gpt-4o-mini", stream=True, extra_headers={"x-fake-fault": "slow"},
    messages=[{"role": "user", "content": "a long slow answer that never finishes " * 3}])
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print("piece", repr(chunk.choices[0].delta.content), flush=True)
print("stream ended", flush=True)
