"""OpenAI embeddings (``/v1/embeddings``): inputs, float or base64 vectors, synthesis."""

from __future__ import annotations

import base64
import struct
from typing import Any

from rewind_vcs.providers.base import Message, Normalised, as_dict, as_int, as_list
from rewind_vcs.providers.openai.common import params, usage_of
from rewind_vcs.providers.synthesis import json_response
from rewind_vcs.store.records import Response

_STRUCTURE = frozenset({"model", "input"})


def is_token_list(value: list[Any]) -> bool:
    """A pre-tokenised input (a list of token ids), which is one input, not many."""
    return bool(value) and all(isinstance(x, int) for x in value)


def read_request(body: dict[str, Any], n: Normalised) -> None:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) and not is_token_list(inputs) else [inputs]
    n.messages = [
        Message("user", item if isinstance(item, str) else str(item))
        for item in items
        if item is not None
    ]
    n.params = params(body, _STRUCTURE)


def decode(value: Any) -> list[float]:
    """A vector as the wire carried it: a list of floats, or base64 float32 little-endian."""
    if isinstance(value, list):
        return [float(x) for x in value if isinstance(x, int | float) and not isinstance(x, bool)]
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            return []
        usable = len(raw) - len(raw) % 4
        return list(struct.unpack(f"<{usable // 4}f", raw[:usable]))
    return []


def encode(vector: list[float]) -> str:
    """A vector as ``encoding_format: base64`` sends it."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def read_list(data: dict[str, Any], n: Normalised) -> None:
    rows = sorted(
        (as_dict(row) for row in as_list(data.get("data"))),
        key=lambda row: as_int(row.get("index")),
    )
    n.output_embeddings = [decode(row.get("embedding")) for row in rows]
    n.usage = usage_of(data.get("usage"))


def synthesise(n: Normalised) -> Response:
    as_base64 = n.params.get("encoding_format") == "base64"
    payload = {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": encode(vector) if as_base64 else vector,
            }
            for i, vector in enumerate(n.output_embeddings)
        ],
        "model": n.model or "unknown",
        "usage": {"prompt_tokens": n.usage.input_tokens, "total_tokens": n.usage.total},
    }
    return json_response(200, payload, latency_ms=n.latency_ms)
