"""Secrets never reach the store: what is dropped or replaced before anything is written.

Two kinds of rule, run together:

- by name (this module): credential headers (``authorization``, ``x-api-key``,
  gateway headers such as Portkey's ``x-portkey-api-key`` and Helicone's
  ``helicone-auth``, and any ``*-api-key``, ``*-token``, ``*-auth``,
  ``*-secret``) are dropped; ``key``/``api_key``/``token``/... query
  parameters are dropped; JSON fields named ``api_key``, ``apiKey``,
  ``secret``, ``password``, ``token``... (at any depth, also inside JSON held
  in a string) get the marker in place of their value; on a command line,
  ``-H 'Authorization: ...'``, ``--api-key X``, ``--token=X``,
  ``OPENAI_API_KEY=...`` and URLs with key parameters are redacted;
- by shape (:mod:`rewind_vcs.store.secrets`): well-known key formats
  anywhere, in any header, body, argument, stdout or message.

A response that echoes a secret of its request verbatim loses it too: the
request's secret values are searched for literally in the response (a header
holding one is dropped, a body gets the marker). Redacting is idempotent, so
the proxy (before the journal) and the writer (before the commit) both run
it, and replay runs it over the live request before matching, so a request
whose URL held a key matches its recording.

Extra names come from ``.rewind/config`` and apply to headers, query
parameters and JSON fields::

    [rewind]
        redact = x-my-token, session_key
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from rewind_vcs.store import secrets
from rewind_vcs.store.records import Exchange, Headers, Request, Response
from rewind_vcs.store.secrets import RULES, Rule, Span

#: Header names (lower case) whose values are credentials.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "apikey",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "helicone-auth",
        "x-portkey-api-key",
        "x-auth-token",
        "x-amz-security-token",
    }
)
#: Header name endings (lower case) that mark a credential header.
SECRET_HEADER_SUFFIXES = ("-api-key", "-apikey", "-token", "-auth", "-secret", "-password", "-credentials")
#: Query parameters (lower case) whose values are credentials.
SECRET_PARAMS = frozenset({"key", "api_key", "api-key", "apikey", "access_token", "token", "auth", "password",
                           "secret", "client_secret"})
#: Last word (after ``-``/``_``) of a flag or variable name that holds a credential.
SECRET_WORDS = frozenset({"key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential",
                          "credentials", "auth"})

_MARK_HEADER = "[REDACTED:header]"
_MARK_ARG = "[REDACTED:arg]"


def is_secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    """True for a header whose value is a credential (by name)."""
    low = name.strip().lower()
    return low in SECRET_HEADERS or low.endswith(SECRET_HEADER_SUFFIXES) or low in {e.lower() for e in extra}


def redact_headers(headers: Headers, extra: Iterable[str] = ()) -> Headers:
    """Drop secret headers (and any named in ``extra``); replace key shapes in the others."""
    names = {e.lower() for e in extra}
    return [(k, secrets.redact_text(v)) for k, v in headers if not is_secret_header(k, names)]


def redact_path(path: str, extra: Iterable[str] = ()) -> str:
    """Drop secret query parameters from ``path?query``, keeping the others in order; mask key shapes."""
    from urllib.parse import parse_qsl, urlencode

    base, sep, query = path.partition("?")
    if not sep:
        return secrets.redact_text(path)
    names = SECRET_PARAMS | {e.lower() for e in extra}
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.lower() not in names]
    if len(kept) != len(pairs):
        path = base + ("?" + urlencode(kept) if kept else "")
    return secrets.redact_text(path)


# -- rules by name, over bytes ----------------------------------------------------------------

_FIELD_NAMES = (rb"api[_-]?key|x-api-key|secret|client[_-]?secret|secret[_-]?key|password|passwd"
                rb"|access[_-]?token|refresh[_-]?token|auth[_-]?token|id[_-]?token|private[_-]?key"
                rb"|session[_-]?token|bearer[_-]?token|token")


def _field_ok(data: bytes, m: re.Match[bytes]) -> bool:
    value = m.group(2)
    if not value or value.startswith(b"[REDACTED"):
        return False
    if m.group(1).lower() == b"token":  # logprobs carry {"token": "Hello"}: only credential-looking values
        return len(value) >= 16 and not any(c in b" \t\\" for c in value)
    return True


def _value_ok(data: bytes, m: re.Match[bytes]) -> bool:
    return not m.group(m.re.groups).startswith(b"[REDACTED")


def _escape(names: Iterable[str]) -> bytes:
    return b"".join(b"|" + re.escape(n.lower().encode()) for n in sorted(names) if n)


_NAME_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _name_before(data: bytes, at: int) -> bytes:
    """The ``[A-Za-z0-9_-]`` word that ends just before ``data[at]``."""
    start = at
    while start > 0 and data[start - 1] in _NAME_CHARS and at - start < 64:
        start -= 1
    return data[start:at]


def _secret_word(name: bytes) -> bool:
    return _secret_name(name.decode("ascii", "replace"))


def _assignment(data: bytes, m: re.Match[bytes]) -> bool:
    """``NAME=value`` where NAME ends in a credential word (``OPENAI_API_KEY=``, ``--token=``)."""
    return _value_ok(data, m) and _secret_word(_name_before(data, m.start()))


def _flag(data: bytes, m: re.Match[bytes]) -> bool:
    """``--api-key value``: a flag whose last word is a credential word, then its value."""
    return _value_ok(data, m) and (m.start() == 0 or data[m.start() - 1] in b" \t'\"") and _secret_word(m.group(1))


def _param(params: frozenset[str], data: bytes, m: re.Match[bytes]) -> bool:
    """``?key=value`` (or ``&``/``;``): a URL query parameter named as a credential."""
    name = _name_before(data, m.start())
    at = m.start() - len(name) - 1
    return (_value_ok(data, m) and at >= 0 and data[at] in b"?&;"
            and name.decode("ascii", "replace").lower() in params)


def _header_text(data: bytes, m: re.Match[bytes]) -> bool:
    """``Authorization: Bearer x`` in free text: a credential header's name before the colon."""
    return _value_ok(data, m) and is_secret_header(_name_before(data, m.start()).decode("ascii", "replace"))


@functools.lru_cache(maxsize=8)
def _body_rules(extra: frozenset[str]) -> tuple[Rule, ...]:
    names = _FIELD_NAMES + _escape(extra)
    params = SECRET_PARAMS | {e.lower() for e in extra}
    return (
        *RULES,
        Rule("field", (), re.compile(rb'"((?i:' + names + rb'))"\s*:\s*"((?:[^"\\]|\\.)*)"'), group=2,
             check=_field_ok),
        Rule("field", (), re.compile(rb'\\"((?i:' + names + rb'))\\"\s*:\s*\\"([^"\\]*)\\"'), group=2,
             check=_field_ok),
        Rule("param", (), re.compile(rb"=([^&#\s\"'\\<>]+)"), group=1, check=functools.partial(_param, params)),
    )


#: Rules for free text (command lines, stdout, commit messages): the body rules plus header and
#: assignment shapes (``Authorization: Bearer x``, ``API_KEY=x``, ``--token x``) that in a
#: request body would be ordinary prose.
_TEXT_ONLY: tuple[Rule, ...] = (
    Rule("header", (b"authorization", b"api-key", b"apikey", b"-token", b"-auth", b"-secret", b"cookie"),
         re.compile(rb":[ \t]*(?:(?i:bearer|basic|token)\s+)?([^\s'\"\\]+)"), group=1, check=_header_text),
    Rule("arg", (), re.compile(rb"=(\"[^\"]*\"|'[^']*'|[^\s'\"&;]+)"), group=1, check=_assignment),
    Rule("arg", (b"key", b"token", b"secret", b"passw", b"pwd", b"credential", b"auth"),
         re.compile(rb"--?([A-Za-z0-9_-]+)\s+([^\s'\"-][^\s'\"]*)"), group=2, check=_flag),
)


def _text_rules(extra: frozenset[str]) -> tuple[Rule, ...]:
    return (*_body_rules(extra), *_TEXT_ONLY)


def redact_body(data: bytes, extra: Iterable[str] = (), known: Sequence[bytes] = ()) -> tuple[bytes, list[Span]]:
    """A body with key shapes, key fields, key URL parameters and ``known`` secrets replaced."""
    spans = secrets.scan(data, _body_rules(frozenset(extra)))
    if known:
        spans = secrets.merge(spans + secrets.literal_spans(data, known))
    return secrets.apply(data, spans), spans


def redact_output(data: bytes, extra: Iterable[str] = ()) -> bytes:
    """A command's output (stdout) with every rule for free text applied."""
    return secrets.apply(data, secrets.scan(data, _text_rules(frozenset(extra))))


def redact_message(text: str, extra: Iterable[str] = ()) -> str:
    """A line of text (commit message, summary, session name) with every rule for free text applied."""
    raw = text.encode("utf-8", "surrogateescape")
    spans = secrets.scan(raw, _text_rules(frozenset(extra)))
    return secrets.apply(raw, spans).decode("utf-8", "surrogateescape") if spans else text


# -- command lines ------------------------------------------------------------------------------

def _secret_name(name: str) -> bool:
    words = [w for w in re.split(r"[-_]", name.lower()) if w]
    return bool(words) and (words[-1] in SECRET_WORDS or "".join(words[-2:]) in SECRET_WORDS)


_ENV_ARG = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)


def _header_arg(arg: str) -> str:
    name, sep, _ = arg.partition(":")
    if sep and is_secret_header(name):
        return f"{name}: {_MARK_HEADER}"
    return redact_message(arg)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line fit to store: credential flags, headers, variables and URL keys replaced."""
    out: list[str] = []
    pending: str | None = None  # "value" after a secret flag, "header" after -H
    for arg in argv:
        if pending == "value":
            out.append(_MARK_ARG)
            pending = None
            continue
        if pending == "header":
            out.append(_header_arg(arg))
            pending = None
            continue
        if arg in ("-H", "--header", "--proxy-header"):
            pending = "header"
            out.append(arg)
            continue
        if arg.startswith("-H") and not arg.startswith("--"):
            out.append("-H" + _header_arg(arg[2:]))
            continue
        if arg.startswith(("--header=", "--proxy-header=")):
            flag, _, value = arg.partition("=")
            out.append(f"{flag}={_header_arg(value)}")
            continue
        if arg.startswith("-") and len(arg) > 1:
            flag, eq, _ = arg.partition("=")
            if _secret_name(flag.lstrip("-")):
                if eq:
                    out.append(f"{flag}={_MARK_ARG}")
                else:
                    out.append(arg)
                    pending = "value"
                continue
        m = _ENV_ARG.fullmatch(arg)
        if m and _secret_name(m.group(1)):
            out.append(f"{m.group(1)}={_MARK_ARG}")
            continue
        out.append(redact_message(arg))
    return out


# -- exchanges ----------------------------------------------------------------------------------

def _header_secrets(headers: Headers, names: set[str]) -> list[bytes]:
    """The values of the credential headers (whole, and the token after a scheme or ``=``)."""
    found: list[bytes] = []
    for k, v in headers:
        if not is_secret_header(k, names):
            continue
        found.append(v.strip().encode())
        for part in re.split(r"[\s;,=]+", v):
            if len(part) >= secrets.MIN_ECHO:
                found.append(part.encode())
    return found


def _param_secrets(path: str, names: set[str]) -> list[bytes]:
    from urllib.parse import parse_qsl

    _, sep, query = path.partition("?")
    if not sep:
        return []
    keys = SECRET_PARAMS | names
    out: list[bytes] = []
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k.lower() in keys and v:
            out += [v.encode()]
    for raw in re.split(r"[&;]", query):  # the raw (still percent-encoded) form, as an echo may carry it
        k, _, v = raw.partition("=")
        if k.lower() in keys and v:
            out.append(v.encode())
    return out


def _fit(headers: Headers, body: bytes) -> Headers:
    """Headers with Content-Length set to the (redacted) body's length."""
    return [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in headers]


def _chunks(chunks: list[tuple[float, int]], spans: list[Span]) -> list[tuple[float, int]]:
    """Chunk sizes of a body after ``spans`` were replaced (each boundary moved with its bytes)."""
    out: list[tuple[float, int]] = []
    old = new_prev = 0
    for t, n in chunks:
        old += n
        new = secrets.remap(old, spans)
        out.append((t, max(0, new - new_prev)))
        new_prev = max(new_prev, new)
    return out


def redact_request(request: Request, extra: Iterable[str] = ()) -> tuple[Request, list[bytes]]:
    """The request without secrets, and the secret values it held (to find echoes of)."""
    names = {e.lower() for e in extra}
    known = _header_secrets(request.headers, names) + _param_secrets(request.path, names)
    body, spans = redact_body(request.body, names)
    known += [request.body[s.start:s.end] for s in spans]
    headers = redact_headers(request.headers, names)
    if spans:
        headers = _fit(headers, body)
    clean = Request(request.method, request.scheme, request.host, redact_path(request.path, names), headers, body)
    return clean, [k for k in dict.fromkeys(known) if len(k) >= secrets.MIN_ECHO]


def redact_response(response: Response, extra: Iterable[str] = (), known: Sequence[bytes] = ()) -> Response:
    """The response without secrets: credential headers, key shapes and echoes of ``known``."""
    names = {e.lower() for e in extra}
    texts = [k.decode("utf-8", "replace") for k in known]
    headers = [(k, v) for k, v in redact_headers(response.headers, names) if not any(t in v for t in texts)]
    body, spans = redact_body(response.body, names, known)
    detail = redact_message(response.error_detail) if response.error_detail else response.error_detail
    if not spans:
        return replace(response, headers=headers, error_detail=detail)
    return replace(response, headers=_fit(headers, body), body=body, chunks=_chunks(response.chunks, spans),
                   error_detail=detail)


def redact_exchange(exchange: Exchange, extra: Iterable[str] = ()) -> Exchange:
    """The exchange without secrets, before it touches the disk (idempotent)."""
    names = list(extra)
    request, known = redact_request(exchange.request, names)
    response = redact_response(exchange.response, names, known)
    return replace(exchange, request=request, response=response)
