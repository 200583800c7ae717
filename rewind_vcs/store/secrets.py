"""The secret scanner: well-known key shapes, found and replaced by a fixed marker.

Every record, body, command line, stdout and commit message goes through
here before it is written (see :mod:`rewind_vcs.store.redact` for the
name-based rules that run alongside). A match becomes ``[REDACTED:<kind>]``,
e.g. ``[REDACTED:openai]``; the markers match no rule, so redacting twice
changes nothing.

Speed: the patterns are precompiled and each starts with a literal or a
small character class, which lets ``re`` skip ahead to candidates; a rule
that cannot (free-text rules such as ``Authorization: ...``) runs only when
one of its literals occurs in the lower-cased data (see
docs/PERFORMANCE.md for the MB/s).

Rules work on bytes (bodies are bytes) and also apply to text through
:func:`redact_text`. A left boundary keeps ``task-...`` from reading as an
OpenAI ``sk-`` key, while a JSON escape (``\\n``) before a key still counts
as a boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

#: What replaces a secret of kind ``k``: ``MARKER % k``.
MARKER = b"[REDACTED:%s]"
#: Shortest value treated as a secret when it is matched literally (an echo).
MIN_ECHO = 8

_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def marker(kind: str) -> bytes:
    """The bytes that replace a secret of ``kind``."""
    return MARKER % kind.encode()


@dataclass(frozen=True)
class Span:
    """One secret found: ``data[start:end]`` is replaced by ``replacement``."""

    start: int
    end: int
    kind: str
    replacement: bytes


Check = Callable[[bytes, "re.Match[bytes]"], bool]


@dataclass(frozen=True)
class Rule:
    """A key shape: ``pattern`` (run only when a lower-cased ``literal`` occurs, if any); replace ``group``."""

    kind: str
    literals: tuple[bytes, ...]
    pattern: re.Pattern[bytes]
    group: int = 0
    check: Check | None = None
    subkinds: tuple[tuple[bytes, str], ...] = ()  # a match starting with the prefix is of that kind
    on_lower: bool = False  # run ``pattern`` (lower case) over the lower-cased data: same offsets


def _left_ok(data: bytes, start: int) -> bool:
    """A key starts at a boundary: not inside a word, unless after a JSON escape such as ``\\n``."""
    if start == 0 or data[start - 1] not in _ALNUM:
        return True
    return start >= 2 and data[start - 2] == 0x5C and data[start - 1] in b"nrtbfu"


def _right_ok(data: bytes, end: int) -> bool:
    return end >= len(data) or data[end] not in _TOKEN_CHARS


def _bounded(data: bytes, m: re.Match[bytes]) -> bool:
    return _left_ok(data, m.start()) and _right_ok(data, m.end())


def _mixed(data: bytes, m: re.Match[bytes]) -> bool:
    """Bounded, and has a digit and a letter after the prefix (prose like ``sk-learn-pipeline`` does not)."""
    token = m.group(0)[3:]
    return _bounded(data, m) and any(48 <= c <= 57 for c in token) and any(c in _LETTERS for c in token)


_LETTERS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _tokenish(data: bytes, m: re.Match[bytes]) -> bool:
    """A bearer token, not a word: has a digit or symbol, or is long."""
    token = m.group(1)
    return len(token) >= 24 or any(c not in _LETTERS for c in token)


def _c(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(pattern)


#: The key shapes, most specific first (an Anthropic key is also ``sk-...``). Every pattern starts
#: with a literal or a small character class, so ``re`` skips to candidates at memory speed.
RULES: tuple[Rule, ...] = (
    Rule("openai", (), _c(rb"sk-(?:ant-|proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{20,}"), check=_mixed,
         subkinds=((b"sk-ant-", "anthropic"),)),
    Rule("google", (), _c(rb"AIza[0-9A-Za-z_\-]{35}"), check=_bounded),
    Rule("aws", (), _c(rb"A[KS]IA[0-9A-Z]{16}"), check=_bounded),
    Rule(
        "aws-secret",
        (),
        _c(rb"secret[_-]?access[_-]?key[\"']?\s*[:=]\s*[\"']?([a-z0-9/+=]{40})(?![a-z0-9/+=])"),
        group=1,
        on_lower=True,
    ),
    Rule("github", (), _c(rb"gh[pousr]_[A-Za-z0-9]{36,}"), check=_bounded),
    Rule("github", (), _c(rb"github_pat_[A-Za-z0-9_]{22,}"), check=_bounded),
    Rule("slack", (), _c(rb"xox[abposre]-[A-Za-z0-9\-]{10,}"), check=_bounded),
    Rule("bearer", (), _c(rb"bearer\s+([a-z0-9._~+/\-]{8,}=*)"), group=1, check=_tokenish, on_lower=True),
    Rule("jwt", (), _c(rb"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"), check=_bounded),
    Rule(
        "private-key",
        (),
        _c(rb"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]{0,16384}?-----END (?:[A-Z]+ )?PRIVATE KEY-----"),
    ),
)


#: Lower-cased copies are made a window at a time, so a 200 MB body costs 1 MiB more, not 200 MB.
WINDOW = 1 << 20
#: Windows overlap by this much: a match shorter than it is never cut at a window's edge.
OVERLAP = 1 << 16


def _spans(rule: Rule, subject: bytes, m: re.Match[bytes], base: int) -> Span | None:
    if rule.check is not None and not rule.check(subject, m):
        return None
    kind = next((k for prefix, k in rule.subkinds if m.group(0).startswith(prefix)), rule.kind)
    return Span(base + m.start(rule.group), base + m.end(rule.group), kind, marker(kind))


def scan(data: bytes, rules: Sequence[Rule] = RULES) -> list[Span]:
    """The secrets in ``data`` by ``rules``, sorted and not overlapping."""
    found: list[Span | None] = []
    windowed: list[Rule] = []
    for rule in rules:
        if rule.literals or rule.on_lower:
            windowed.append(rule)
            continue
        found += [_spans(rule, data, m, 0) for m in rule.pattern.finditer(data)]
    if windowed:
        for base in range(0, max(len(data), 1), WINDOW):
            end = min(len(data), base + WINDOW + OVERLAP)
            low = data[base:end].lower()
            for rule in windowed:
                if rule.literals and not any(lit in low for lit in rule.literals):
                    continue  # a pre-check for rules whose pattern cannot skip ahead by itself
                if rule.on_lower:
                    found += [_spans(rule, low, m, base) for m in rule.pattern.finditer(low)]
                else:
                    found += [_spans(rule, data, m, 0) for m in rule.pattern.finditer(data, base, end)]
    return merge([s for s in found if s is not None])


def literal_spans(data: bytes, values: Iterable[bytes], kind: str = "echo") -> list[Span]:
    """Every occurrence of each of ``values`` (secrets known to be in the request) in ``data``."""
    spans: list[Span] = []
    for value in values:
        if len(value) < MIN_ECHO:
            continue
        at = data.find(value)
        while at >= 0:
            spans.append(Span(at, at + len(value), kind, marker(kind)))
            at = data.find(value, at + len(value))
    return spans


def merge(spans: list[Span]) -> list[Span]:
    """Spans sorted by start; one that overlaps an earlier kept span is dropped (the earlier wins)."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and span.start < out[-1].end:
            if span.end > out[-1].end:  # overlapping tail: widen the kept span so nothing leaks
                last = out[-1]
                out[-1] = Span(last.start, span.end, last.kind, last.replacement)
            continue
        out.append(span)
    return out


def apply(data: bytes, spans: Sequence[Span]) -> bytes:
    """``data`` with every span replaced."""
    if not spans:
        return data
    parts: list[bytes] = []
    pos = 0
    for span in spans:
        parts.append(data[pos:span.start])
        parts.append(span.replacement)
        pos = span.end
    parts.append(data[pos:])
    return b"".join(parts)


def remap(offset: int, spans: Sequence[Span]) -> int:
    """Where ``offset`` of the original data lands after :func:`apply` (inside a span: at its end)."""
    shift = 0
    for span in spans:
        if span.start >= offset:
            break
        if span.end > offset:  # the offset falls inside a replaced secret
            return span.start + shift + len(span.replacement)
        shift += len(span.replacement) - (span.end - span.start)
    return offset + shift


def redact_bytes(data: bytes, rules: Sequence[Rule] = RULES) -> bytes:
    """``data`` with every known key shape replaced by its marker."""
    return apply(data, scan(data, rules))


def redact_text(text: str, rules: Sequence[Rule] = RULES) -> str:
    """:func:`redact_bytes` for text."""
    raw = text.encode("utf-8", "surrogateescape")
    spans = scan(raw, rules)
    if not spans:
        return text
    return apply(raw, spans).decode("utf-8", "surrogateescape")


def find_kinds(data: bytes) -> list[str]:
    """The kinds of secret in ``data`` (empty when none): what a pre-push check reports."""
    return sorted({s.kind for s in scan(data)})
