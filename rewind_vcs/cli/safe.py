"""Recorded text never drives the terminal.

Everything rewind prints may hold text someone else wrote: a model's answer,
a tool result, an imported session's name or command, a pulled tag, a remote's
progress message. Written raw, an ``ESC [`` sequence recolours or clears the
screen, an OSC 8 sequence plants a hyperlink whose target is not its text, BEL
rings, a bidirectional override (U+202E) makes ``evil.sh`` read as ``hs.live``,
and a lone surrogate makes the write itself fail. So every piece of recorded or
repository-supplied text goes through :func:`safe_text` before it is printed:
control characters become visible escapes (``\\x1b``, ``\\x07``, ``\\u202e``),
never the characters themselves.

The second hazard is rich's markup: ``[/INST]`` in a model answer is a closing
tag that matches nothing (rich raises), ``[link=...]`` a hyperlink. rewind's
consoles are created with ``markup=False`` and ``emoji=False``, so a plain
string is printed as it is; style comes only from :class:`rich.text.Text`
objects, which :func:`styled` builds from already-safe parts.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.text import Text

__all__ = ["safe_text", "safe_json_bytes", "styled", "UNSAFE"]

#: C0 controls (tab and newline handled apart), DEL, C1 controls, the bidirectional
#: marks, embeddings, overrides and isolates, the line/paragraph separators and lone
#: surrogates (which cannot even be encoded for the terminal).
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
UNSAFE = re.compile(f"[{_CONTROLS}\t\n]")
_UNSAFE_MULTILINE = re.compile(f"[{_CONTROLS}]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x1B:
        return "\\x1b"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: object, *, multiline: bool = False) -> str:
    """``text`` with every terminal control shown as an escape (``\\x1b``, ``\\u202e``).

    One line by default: newline and tab are escaped too, so a recorded name can
    never start a line of its own that looks like rewind's. ``multiline=True``
    (bodies, diffs of stdout) keeps newlines and tabs, and reads CRLF as a newline.
    Carriage return is always escaped: it would let text overwrite its own line.
    """
    s = text if isinstance(text, str) else str(text)
    if multiline:
        if "\r\n" in s:
            s = s.replace("\r\n", "\n")
        return _UNSAFE_MULTILINE.sub(_visible, s) if _UNSAFE_MULTILINE.search(s) else s
    return UNSAFE.sub(_visible, s) if UNSAFE.search(s) else s


#: The same characters as UTF-8 inside JSON output (which already escapes C0 controls):
#: DEL, C1 (U+0080-U+009F), U+061C, U+200E/F, U+2028-U+202E, U+2066-U+2069.
_UNSAFE_JSON = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8e\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]")


def _json_escape(match: re.Match[bytes]) -> bytes:
    return f"\\u{ord(match.group().decode()):04x}".encode()


def safe_json_bytes(data: bytes) -> bytes:
    """JSON output with the controls JSON leaves raw (DEL, C1, bidi) written as ``\\uXXXX``.

    The document means exactly the same to a parser; a terminal shows it inert.
    """
    return _UNSAFE_JSON.sub(_json_escape, data) if _UNSAFE_JSON.search(data) else data


def styled(*parts: str | tuple[object, str]) -> Text:
    """A rich ``Text`` from parts: a ``str`` is rewind's own words, a ``(value, style)`` pair
    a value (recorded or not) shown in that style. Every part is made safe; none is parsed
    as markup."""
    from rich.text import Text

    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            value, style = part
            out.append(safe_text(value), style=style or None)
        else:
            out.append(safe_text(part))
    return out
