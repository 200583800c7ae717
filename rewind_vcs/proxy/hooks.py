"""The ``pre-step`` hook: an executable that may rewrite or veto a step before it is stored.

Like git's hooks, it lives in ``.rewind/hooks/pre-step`` and must be
executable. It gets the step as one JSON object on stdin::

    {"format": 1,
     "step": {...step.json fields...},
     "request":  {"method", "scheme", "host", "path", "headers": [[k, v], ...],
                  "body": "<text>" | null, "body_base64": "<b64>" | null},
     "response": {"status", "reason", "headers", "body" | "body_base64"}}

- exit 0 with nothing on stdout: store the step as it is;
- exit 0 with a JSON object on stdout: store that instead (same shape; only
  request/response headers, path, bodies and the step's ``summary``/``extra``
  are taken);
- any other exit code: veto, the step is not stored.

A sample that redacts e-mail addresses ships in the project's ``hooks/``.
"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from rewind_vcs.errors import RewindError
from rewind_vcs.store import format as fmt
from rewind_vcs.store.records import Exchange, StepInfo

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

HOOK_TIMEOUT = 30.0


def _body_out(data: bytes) -> dict[str, Any]:
    try:
        return {"body": data.decode(), "body_base64": None}
    except UnicodeDecodeError:
        return {"body": None, "body_base64": base64.b64encode(data).decode()}


def _body_in(part: dict[str, Any], old: bytes) -> bytes:
    if part.get("body_base64") is not None:
        return base64.b64decode(part["body_base64"])
    if part.get("body") is not None:
        return str(part["body"]).encode()
    return old


def step_document(exchange: Exchange, info: StepInfo) -> dict[str, Any]:
    req, resp = exchange.request, exchange.response
    return {
        "format": 1,
        "step": fmt.step_to_record(info),
        "request": {"method": req.method, "scheme": req.scheme, "host": req.host, "path": req.path,
                    "headers": [list(h) for h in req.headers], **_body_out(req.body)},
        "response": {"status": resp.status, "reason": resp.reason,
                     "headers": [list(h) for h in resp.headers], **_body_out(resp.body)},
    }


class StepHook:
    """Runs one hook executable per step."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_repo(cls, repo: Repo, name: str = "pre-step") -> StepHook | None:
        path = repo.path / "hooks" / name
        return cls(path) if path.is_file() and os.access(path, os.X_OK) else None

    def run(self, exchange: Exchange, info: StepInfo) -> tuple[Exchange, StepInfo] | None:
        """The (possibly rewritten) step, or None when the hook vetoes it."""
        doc = orjson.dumps(step_document(exchange, info))
        try:
            proc = subprocess.run([str(self.path)], input=doc, capture_output=True, timeout=HOOK_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RewindError(f"the pre-step hook {self.path} failed to run: {exc}",
                              hint="fix or remove it; the step was kept in the journal") from None
        if proc.returncode != 0:
            return None
        out = proc.stdout.strip()
        if not out:
            return exchange, info
        try:
            new = orjson.loads(out)
            rq, rs = new["request"], new["response"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise RewindError(f"the pre-step hook {self.path} printed invalid JSON ({exc})",
                              hint="print nothing to keep the step, or the whole document") from None
        req = replace(exchange.request, path=rq.get("path", exchange.request.path),
                      headers=[(k, v) for k, v in rq.get("headers", exchange.request.headers)],
                      body=_body_in(rq, exchange.request.body))
        old = exchange.response
        body = _body_in(rs, old.body)
        chunks = old.chunks if body == old.body else [(old.chunks[-1][0] if old.chunks else 0.0, len(body))]
        resp = replace(old, headers=[(k, v) for k, v in rs.get("headers", old.headers)], body=body,
                       chunks=chunks)
        step = new.get("step") or {}
        info = replace(info, summary=step.get("summary", info.summary), extra=step.get("extra", info.extra))
        return replace(exchange, request=req, response=resp), info
