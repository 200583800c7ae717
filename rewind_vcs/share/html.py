"""``rewind share``: one self-contained HTML file for a session.

The page is ``page.html`` with ``page.css`` and ``page.js`` inlined and the
data of :mod:`rewind_vcs.share.data` embedded as JSON in a
``<script type="application/json">`` block; the small script draws the page
from it with DOM calls (text nodes only, never markup), and a ``<noscript>``
table lists the steps for readers without JavaScript.

Nothing from the recording can break out of the page:

- the JSON block has every ``<``, ``>`` and ``&`` written as a ``\\u`` escape,
  so no ``</script>`` or ``<!--`` can appear in it;
- every other value (title, fallback table) goes through :func:`html.escape`;
- a Content-Security-Policy allows exactly the page's own script and style (by
  their SHA-256) and nothing else: no other script, no network request of any
  kind (``default-src 'none'``), so the file works offline and cannot phone home.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewind_vcs.errors import ConfigError
from rewind_vcs.share.data import ShareData, share_data

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

_PLACEHOLDER = re.compile(r"\{\{([A-Z]+)\}\}")
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


@dataclass
class SharePage:
    """A rendered page and what it holds."""

    html: str
    data: ShareData

    def to_json(self, path: str | None = None) -> dict[str, Any]:
        return {
            "path": path,
            "bytes": len(self.html.encode("utf-8")),
            "session": self.data.session_id,
            "timeline": self.data.timeline,
            "step": self.data.step,
            "steps": self.data.steps,
            "timelines": len(self.data.payload["timelines"]),
            "include_content": self.data.include_content,
        }


def build_page(
    repo: Repo, spec: str, *, include_content: bool = False, generated_at: float | None = None
) -> SharePage:
    """The page for ``spec`` (a session, timeline or step ref); see :func:`share_data`."""
    data = share_data(repo, spec, include_content=include_content, generated_at=generated_at)
    return SharePage(render_html(data), data)


def write_page(page: SharePage, path: str | os.PathLike[str]) -> Path:
    """Write the page to ``path`` atomically (a temporary file, then a rename); mode 0644."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"cannot write {target}: it is a directory", hint="give a file name, e.g. -o session.html")
    parent = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or exc}", hint="choose a writable path with -o"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(page.html.encode("utf-8"))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or exc}", hint="choose a writable path with -o"
        ) from None
    return target


def render_html(data: ShareData) -> str:
    """The whole page as one string."""
    payload = data.payload
    css, script = _asset("page.css"), _asset("page.js")
    session = payload["session"]
    title = f"rewind · {session['name'] or session['id']} · {data.timeline}"
    values = {
        "CSP": _csp(script, css),
        "GENERATOR": _text(payload["generator"]),
        "TITLE": _text(title),
        "CSS": css,
        "FALLBACK": fallback_html(payload),
        "DATA": embed_json(payload),
        "SCRIPT": script,
    }
    # one pass over the template only: text from the recording is never searched for placeholders
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], _asset("page.html"))


#: control characters and bidirectional overrides, shown as ``\uXXXX`` in the static parts of the
#: page (the script does the same for what it draws): the recording must not reorder the page
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _text(value: Any) -> str:
    """``value`` as HTML text: escaped, with control and bidi characters made visible."""
    return html.escape(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value)))


def embed_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: ASCII only, no ``<``, ``>`` or ``&``."""
    text = json.dumps(_finite(value), ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)
    return re.sub(r"[<>&]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def _finite(value: Any) -> Any:
    """NaN and infinities as null: JSON has no such numbers, and ``JSON.parse`` would fail."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _csp(script: str, css: str) -> str:
    return (
        "default-src 'none'; "
        f"script-src '{_sha256(script)}'; "
        f"style-src '{_sha256(css)}'; "
        "base-uri 'none'; form-action 'none'"
    )


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


@cache
def _asset(name: str) -> str:
    text = resources.files("rewind_vcs.share").joinpath(name).read_text(encoding="utf-8")
    return text.replace("\r\n", "\n")  # the browser hashes what it parsed: LF line ends


# -- the <noscript> fallback -------------------------------------------------------------


def fallback_html(payload: dict[str, Any]) -> str:
    """A static summary and step table of the selected timeline (content-free fields only)."""
    e = _text
    session = payload["session"]
    name = payload["selected"]["timeline"]
    timeline = next(t for t in payload["timelines"] if t["name"] == name)
    rows = [payload["steps"][i] for i in timeline["steps"]]
    tokens = sum(s["tokens"] for s in rows)
    errors = sum(s["status"] == "error" for s in rows)
    forks = ", ".join(
        f"{t['name']} ({'recording' if t['fork_point'] is None else 'forked at step-' + str(t['fork_point'])},"
        f" {t['status']})"
        for t in payload["timelines"]
    )
    out = [
        '<div class="static"><section>',
        f"<h1>{e(session['name'] or session['id'])}</h1>",
        f"<p>session {e(session['id'])} · timeline {e(name)} · {e(timeline['status'])} · "
        f"{len(rows)} steps · {errors} errors · {tokens:,} tokens</p>",
        f"<p>timelines: {e(forks)}</p>",
        "<table><thead><tr><th>#</th><th>agent</th><th>kind</th><th>model</th><th>status</th>"
        "<th>tokens</th><th>latency</th><th>cost</th><th>error</th></tr></thead><tbody>",
    ]
    for s in rows:
        cls = ' class="error"' if s["status"] == "error" else ""
        cost = "-" if s["cost_usd"] is None else f"${s['cost_usd']:.4f}"
        out.append(
            f"<tr{cls}><td>{s['n']}</td><td>{e(s['span'] or '-')}</td><td>{e(s['kind'])}</td>"
            f"<td>{e(s['model'] or '-')}</td><td>{e(s['status'])} {s['http_status'] or ''}</td>"
            f"<td>{s['tokens']:,}</td><td>{s['latency_ms']:.0f} ms</td><td>{cost}</td>"
            f"<td>{e(s['error'] or '')}</td></tr>"
        )
    out.append("</tbody></table></section></div>")
    return "".join(out)
