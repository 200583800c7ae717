"""Secrets never reach the store: the headers and query parameters we drop.

The proxy redacts before anything is journalled, and the store's writer
redacts again before anything is committed (a second line of defence that
costs microseconds). Extra names come from ``.rewind/config``::

    [rewind]
        redact = x-my-token, session_key
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

from rewind_vcs.store.records import Headers

#: Header names (lower case) whose values are credentials.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
    }
)
#: Query parameters (lower case) whose values are credentials.
SECRET_PARAMS = frozenset({"key", "api_key", "apikey", "access_token", "token"})


def redact_headers(headers: Headers, extra: Iterable[str] = ()) -> Headers:
    """Drop secret headers (and any named in ``extra``, case-insensitive)."""
    names = SECRET_HEADERS | {e.lower() for e in extra}
    return [(k, v) for k, v in headers if k.lower() not in names]


def redact_path(path: str, extra: Iterable[str] = ()) -> str:
    """Drop secret query parameters from ``path?query``, keeping the others in order."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    names = SECRET_PARAMS | {e.lower() for e in extra}
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in names]
    if len(kept) == len(pairs):
        return path
    return base + ("?" + urlencode(kept) if kept else "")
