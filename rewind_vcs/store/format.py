"""Versioned JSON records: encode what we write, migrate what we read.

Every JSON file rewind stores carries ``"format": N``. A reader migrates an
older record step by step (``MIGRATIONS[kind][n]`` turns format n into n+1)
and refuses a newer one with :class:`~rewind_vcs.errors.FormatTooNewError`,
whose message says to upgrade rewind. The idea is vcrpy's ``migration.py`` and
mitmproxy's ``io/compat.py``: old data keeps working, new data never gets
misread.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import orjson

from rewind_vcs.errors import FormatError, FormatTooNewError
from rewind_vcs.store.records import (
    FORMAT_VERSION,
    EndInfo,
    Request,
    Response,
    SessionInfo,
    StepInfo,
    StepKind,
    StepStatus,
    TransportError,
    Usage,
)

Record = dict[str, Any]

#: kind -> {from_version: function(record) -> record at from_version + 1}.
#: Format 1 is the first; a future format 2 adds ``MIGRATIONS["step"][1]``.
MIGRATIONS: dict[str, dict[int, Callable[[Record], Record]]] = {
    "session": {},
    "step": {},
    "end": {},
    "request": {},
    "response": {},
}


def dumps(record: Record) -> bytes:
    """Stable bytes for a record: sorted keys, two-space indent, trailing newline."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def loads(data: bytes, kind: str, where: str = "") -> Record:
    """Parse a stored record of ``kind`` and bring it up to the current format."""
    label = f"{kind} record{f' {where}' if where else ''}"
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"{label} is not valid JSON ({exc})", hint="run 'rewind fsck'") from None
    if not isinstance(record, dict):
        raise FormatError(f"{label} is not a JSON object", hint="run 'rewind fsck'")
    version = record.get("format")
    if not isinstance(version, int) or version < 1:
        raise FormatError(f"{label} has no valid 'format' field", hint="run 'rewind fsck'")
    if version > FORMAT_VERSION:
        raise FormatTooNewError(label, version, FORMAT_VERSION)
    steps = MIGRATIONS.get(kind, {})
    out: Record = record
    while version < FORMAT_VERSION:
        out = steps[version](out)
        version += 1
        out["format"] = version
    return out


def plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


# -- step.json -------------------------------------------------------------

def step_to_record(info: StepInfo) -> Record:
    record: Record = plain(info)
    record["format"] = FORMAT_VERSION
    return record


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _shaped(kind: str) -> Callable[[Callable[_P, _T]], Callable[_P, _T]]:
    """Decorator: a record of the wrong shape (a field of the wrong type) is a FormatError."""

    def wrap(fn: Callable[_P, _T]) -> Callable[_P, _T]:
        def read(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return fn(*args, **kwargs)
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise FormatError(f"{kind} record has a field of the wrong shape ({type(exc).__name__}: {exc})",
                                  hint="run 'rewind fsck'") from None

        read.__name__, read.__doc__ = fn.__name__, fn.__doc__
        return read

    return wrap


@_shaped("step")
def step_from_record(record: Record) -> StepInfo:
    usage = record.get("usage") or {}
    return StepInfo(
        n=int(record["n"]),
        kind=StepKind(record.get("kind", "http")),
        provider=record.get("provider", "generic"),
        endpoint=record.get("endpoint", ""),
        model=record.get("model"),
        status=StepStatus(record.get("status", "ok")),
        http_status=int(record.get("http_status", 0)),
        error=record.get("error"),
        started_at=float(record.get("started_at", 0.0)),
        latency_ms=float(record.get("latency_ms", 0.0)),
        ttft_ms=record.get("ttft_ms"),
        stream=bool(record.get("stream", False)),
        usage=Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))),
        cost_usd=record.get("cost_usd"),
        match_key=record.get("match_key", ""),
        summary=record.get("summary", ""),
        span=record.get("span"),
        session=record.get("session", ""),
        extra=record.get("extra") or {},
    )


# -- session.json / end.json -------------------------------------------------

def session_to_record(info: SessionInfo) -> Record:
    record: Record = plain(info)
    record["format"] = FORMAT_VERSION
    return record


@_shaped("session")
def session_from_record(record: Record) -> SessionInfo:
    return SessionInfo(
        name=record.get("name"),
        command=list(record.get("command") or []),
        cwd=record.get("cwd", ""),
        started_at=float(record.get("started_at", 0.0)),
        rewind_version=record.get("rewind_version", ""),
        code_version=record.get("code_version"),
        tags=list(record.get("tags") or []),
        nonce=record.get("nonce", ""),
        extra=record.get("extra") or {},
    )


def end_to_record(info: EndInfo) -> Record:
    record: Record = plain(info)
    record.pop("stdout", None)  # stored as its own blob, end/stdout
    record["format"] = FORMAT_VERSION
    return record


@_shaped("end")
def end_from_record(record: Record, stdout: bytes | None = None) -> EndInfo:
    return EndInfo(
        exit_code=record.get("exit_code"),
        ended_at=float(record.get("ended_at", 0.0)),
        stdout_digest=record.get("stdout_digest"),
        stdout=stdout,
        steps=int(record.get("steps", 0)),
        extra=record.get("extra") or {},
    )


# -- request/meta.json, response/meta.json -------------------------------------

@_shaped("request")
def request_from_record(record: Record, body: bytes) -> Request:
    headers = [(str(k), str(v)) for k, v in record["headers"]]
    fields = {f: record[f] for f in ("method", "scheme", "host", "path")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise TypeError("method, scheme, host and path must be strings")
    return Request(headers=headers, body=body, **fields)


@_shaped("response")
def response_from_record(record: Record, body: bytes) -> Response:
    status = record["status"]
    if not isinstance(status, int):
        raise TypeError("status must be an integer")
    return Response(
        status=status,
        reason=str(record.get("reason", "")),
        headers=[(str(k), str(v)) for k, v in record["headers"]],
        body=body,
        chunks=[(float(t), int(n)) for t, n in record.get("chunks", [])],
        error=TransportError(record["error"]) if record.get("error") else None,
        error_detail=str(record.get("error_detail", "")),
    )


def request_meta(method: str, scheme: str, host: str, path: str, headers: list[tuple[str, str]]) -> Record:
    return {
        "format": FORMAT_VERSION,
        "method": method,
        "scheme": scheme,
        "host": host,
        "path": path,
        "headers": [list(h) for h in headers],
    }


def response_meta(
    status: int,
    reason: str,
    headers: list[tuple[str, str]],
    chunks: list[tuple[float, int]],
    error: TransportError | None,
    error_detail: str,
) -> Record:
    return {
        "format": FORMAT_VERSION,
        "status": status,
        "reason": reason,
        "headers": [list(h) for h in headers],
        "chunks": [[round(t, 6), n] for t, n in chunks],
        "error": error.value if error else None,
        "error_detail": error_detail,
    }
