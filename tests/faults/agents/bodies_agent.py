"""Big, binary and non-JSON bodies sent through the proxy with plain httpx; prints digests, deterministically.

The upstream is tests/faults/test_bad_input.py's BlobUpstream, reached through
OPENAI_BASE_URL (the proxy's /openai prefix) as any HTTP call on an LLM host.
Usage: python bodies_agent.py MEGABYTES
"""

from __future__ import annotations

import hashlib
import os
import random
import sys

import httpx

base = os.environ["OPENAI_BASE_URL"]  # http://127.0.0.1:<proxy>/openai/v1
size = int(sys.argv[1]) * 1024 * 1024


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


with httpx.Client(trust_env=False, timeout=60) as client:
    big = random.Random(7).randbytes(1024) * (size // 1024)
    r = client.post(f"{base}/blob?size={size}", content=big, headers={"content-type": "application/octet-stream"})
    print("big:", r.status_code, len(r.content), digest(r.content), r.headers["x-request-sha256"][:16],
          digest(big))

    binary = bytes(range(256)) * 3 + b"\x00\xff not json {"
    r = client.post(f"{base}/chat/completions", content=binary,
                    headers={"content-type": "application/json"})
    print("binary on an LLM path:", r.status_code, r.headers["content-type"], digest(r.content))

    r = client.post(f"{base}/text", content="plain text, not JSON: ü €\n".encode(),
                    headers={"content-type": "text/plain; charset=utf-8"})
    print("text:", r.status_code, r.text.strip())

    r = client.post(f"{base}/gzipped", content=b"{}", headers={"content-type": "application/json"})
    print("gzip despite identity:", r.status_code, r.headers.get("content-encoding"), r.json())

    r = client.post(f"{base}/empty", content=b"")
    print("empty:", r.status_code, repr(r.content))
