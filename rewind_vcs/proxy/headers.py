"""Header rules shared by both sides of the proxy."""

from __future__ import annotations

Headers = list[tuple[str, str]]

#: Headers that describe one connection, never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

#: Prefix of rewind's own request headers (span, session tag): never forwarded.
REWIND_PREFIX = "x-rewind-"


def connection_tokens(headers: Headers) -> set[str]:
    """Header names a ``Connection`` header lists (they are hop-by-hop too)."""
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def end_to_end(headers: Headers, also_drop: frozenset[str] | set[str] = frozenset()) -> Headers:
    """``headers`` without hop-by-hop ones (and without ``also_drop``, lower-case names)."""
    drop = HOP_BY_HOP | connection_tokens(headers) | also_drop
    return [(k, v) for k, v in headers if k.lower() not in drop]


def get(headers: Headers, name: str) -> str | None:
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return None
