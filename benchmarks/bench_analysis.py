"""`rewind diff` and `rewind bisect` of two 1,000-step sessions, beside the time to just read them.

Run: python benchmarks/bench_analysis.py [--steps N] [--runs R] [--diverge-at K]

Two long agent runs are written with the store writer (never through the
proxy): a tool-using loop of OpenAI chat calls whose requests carry a system
prompt with running notes and a window of the last messages, every response
with fresh ids, timestamps and request-id headers, as a real API mints them.
The second run's tool returns something else at step K (default 70% of the
way), so every later step differs: the diff compares every pair (the equal
ones through their normalised views, because their bytes differ in ids), and
the bisect walks to step K.

Target (issue C): diff and bisect of two 1,000-step sessions <= 1 s each. The
baseline is reading both sessions' steps (step.json, request and response
bodies) from a freshly opened repository; the figures are printed beside it
as ratios, in process and through the real CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import interleaved, median_ms, report  # noqa: E402
from rewind_vcs.providers import step_info  # noqa: E402
from rewind_vcs.store.records import EndInfo, Exchange, Request, Response  # noqa: E402
from rewind_vcs.store.repo import Repo  # noqa: E402

TOOLS = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a record up by key.",
    "parameters": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}}]
WINDOW = 12  # messages of history each request carries


def _exchange(body: dict, message: dict, started: float) -> Exchange:
    req = Request("POST", "https", "api.openai.com", "/v1/chat/completions",
                  [("content-type", "application/json"), ("x-stainless-retry-count", "0")],
                  json.dumps(body).encode())
    payload = {
        "id": "chatcmpl-" + secrets.token_hex(12), "object": "chat.completion",
        "created": int(started), "model": body["model"], "system_fingerprint": "fp_" + secrets.token_hex(5),
        "choices": [{"index": 0, "message": message,
                     "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
        "usage": {"prompt_tokens": len(req.body) // 4, "completion_tokens": 20},
    }
    raw = json.dumps(payload).encode()
    resp = Response(200, "OK", [("content-type", "application/json"), ("x-request-id", secrets.token_hex(8)),
                                ("date", time.strftime("%a, %d %b %Y %H:%M:%S GMT"))], raw, [(0.2, len(raw))])
    return Exchange(req, resp, started_at=started, duration=0.2)


def agent_run(steps: int, diverge_at: int | None) -> list[Exchange]:
    """A tool loop: odd steps ask for a lookup, even steps read its result and take a note."""
    out: list[Exchange] = []
    notes: list[str] = []
    history: list[dict] = [{"role": "user", "content": "Reconcile the ledger, one record per turn."}]
    started = time.time()
    for n in range(1, steps + 1):
        system = "You reconcile ledgers. Notes so far: " + " | ".join(notes[-5:])
        body = {"model": "gpt-4o-mini", "temperature": 0, "tools": TOOLS,
                "messages": [{"role": "system", "content": system}, *history[-WINDOW:]]}
        if n % 2 == 1:
            call_id = "call_" + secrets.token_hex(12)
            message = {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": "lookup", "arguments": json.dumps({"key": f"record-{n // 2}"})}}]}
            out.append(_exchange(body, message, started + n))
            history.append(message)
            value = f"record-{n // 2}: balance {(n * 37) % 1000}.00 EUR, status settled"
            if diverge_at is not None and n + 1 >= diverge_at:
                value = value.replace("settled", "pending")
            history.append({"role": "tool", "tool_call_id": call_id, "content": value})
        else:
            note = f"checked {history[-1]['content']}"
            message = {"role": "assistant", "content": note}
            out.append(_exchange(body, message, started + n))
            history.append(message)
            notes.append(note[:60])
    return out


def write(repo: Repo, exchanges: list[Exchange], name: str) -> str:
    w = repo.create_session(name=name, command=["python", "ledger_agent.py"])
    for ex in exchanges:
        w.append(ex, step_info(ex, 0, w.id, "openai"))
    w.finish(EndInfo(exit_code=0))
    return w.id


def read_steps(rewind_dir: Path, *ids: str) -> int:
    """The baseline: every step's step.json and bodies, from a freshly opened repository."""
    repo = Repo.open(rewind_dir)
    total = 0
    for sid in ids:
        for step in repo.session(sid).main.steps:
            total += len(step.request.body) + len(step.response.body) + step.info.n
    return total


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--diverge-at", type=int, default=None)
    ap.add_argument("--keep", help="build the repository here and keep it")
    args = ap.parse_args()
    diverge = args.diverge_at or max(2, int(args.steps * 0.7))
    diverge += diverge % 2  # the tool answers at odd steps; its result is read at the next, even one
    where = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rewind-bench-analysis-"))
    repo = Repo.init(where)
    t0 = time.perf_counter()
    good = write(repo, agent_run(args.steps, None), "ledger-good")
    bad = write(repo, agent_run(args.steps, diverge), "ledger-bad")
    print(f"wrote two {args.steps}-step sessions in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    from rewind_vcs.analysis.bisect import bisect_refs
    from rewind_vcs.analysis.diff import diff_refs

    result = bisect_refs(Repo.open(repo.path), good, bad)
    assert result.first_divergent_step == diverge, (result.first_divergent_step, diverge)
    assert [c.value for c in result.causes][:1] == ["tool_result"], result.causes
    diff = diff_refs(Repo.open(repo.path), good, bad)
    assert not diff.identical and diff.counts()["changed"] == args.steps - diverge + 1, diff.counts()
    import deepdiff  # noqa: F401 - imported once here, as the CLI imports it once per command

    base, d_t, b_t = [], [], []
    for _ in range(args.runs):  # interleaved, so machine noise hits all three alike
        base += timed(lambda: read_steps(repo.path, good, bad), 1)
        d_t += timed(lambda: diff_refs(Repo.open(repo.path), good, bad), 1)
        b_t += timed(lambda: bisect_refs(Repo.open(repo.path), good, bad), 1)
    same = write(repo, agent_run(args.steps, None), "ledger-again")
    s_t = timed(lambda: bisect_refs(Repo.open(repo.path), good, same), args.runs)

    rewind = [sys.executable, "-m", "rewind_vcs"]
    env = {**os.environ, "COLUMNS": "120"}
    cli = interleaved({
        "rewind diff --json": rewind + ["diff", good, bad, "--json"],
        "rewind bisect --json": rewind + ["bisect", good, bad, "--json"],
        "rewind log (baseline: start-up)": rewind + ["log", "-n", "1"],
    }, runs=args.runs, cwd=str(where), env=env)

    base_ms = median_ms(base)
    rows = [
        (f"read both sessions' steps ({args.steps} each)", f"{base_ms:7.0f} ms", "baseline"),
        ("diff (library)", f"{median_ms(d_t):7.0f} ms  ({median_ms(d_t) / base_ms:4.1f}x read)", "<= 1000 ms"),
        (f"bisect (library, departs at {diverge})", f"{median_ms(b_t):7.0f} ms  "
         f"({median_ms(b_t) / base_ms:4.1f}x read)", "<= 1000 ms"),
        ("bisect of two recordings of one run", f"{median_ms(s_t):7.0f} ms  "
         f"({median_ms(s_t) / base_ms:4.1f}x read)", "<= 1000 ms (no divergence)"),
    ]
    start_ms = median_ms(cli["rewind log (baseline: start-up)"])
    for name in ("rewind diff --json", "rewind bisect --json"):
        ms = median_ms(cli[name])
        rows.append((name, f"{ms:7.0f} ms  ({ms / base_ms:4.1f}x read)", "<= 1000 ms + start-up"))
    rows.append(("rewind log -n 1", f"{start_ms:7.0f} ms", "baseline (CLI start-up)"))
    report("analysis", rows, {
        "steps": args.steps, "diverge_at": diverge,
        "ms": {"read": base_ms, "diff": median_ms(d_t), "bisect": median_ms(b_t),
               "bisect_identical": median_ms(s_t), **{k: median_ms(v) for k, v in cli.items()}},
    })
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
