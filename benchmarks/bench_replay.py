"""Replay of a 1,000-step session from one keep-alive client: steps per second.

Run: python benchmarks/bench_replay.py [--steps N]

The session is written with the store's writer from real exchanges: every
request is sent to the fake LLM first (an agent's conversation, the last 40
messages kept, every third call streamed), and the exact response bytes and
chunk sizes are what the step records. It is then served by ReplayHandler
behind the proxy (in its own process, set up as ``replay_run`` does) and a
keep-alive client sends the recorded requests in order, checking that every
answer is byte for byte the recorded body. Target (issue E): >= 300 steps/s.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402

from benchmarks.clients import HEADERS, SyncClient  # noqa: E402
from benchmarks.common import (  # noqa: E402
    Deadline,
    print_table,
    row,
    scratch_dir,
    summary_ms,
    verdict,
    write_results,
)
from benchmarks.servers import Server  # noqa: E402
from rewind_vcs.providers import step_info  # noqa: E402
from rewind_vcs.store.records import EndInfo, Exchange, Request, Response  # noqa: E402
from rewind_vcs.store.repo import Repo  # noqa: E402
from rewind_vcs.testing.fake_llm import FakeLLM  # noqa: E402

SECTION = "replay"
PATH = "/v1/chat/completions"
WINDOW = 40
TARGET_STEPS_PER_SECOND = 300
_SYSTEM = ("You are a research agent. Plan, call tools, check facts against sources, and answer in short "
           "paragraphs with citations. ") * 4


def _question(i: int) -> str:
    topics = ("the printing press", "double-entry bookkeeping", "the steam engine", "vaccination",
              "the telegraph", "refrigeration", "the transistor", "container shipping")
    return (f"Step {i}: find out when {topics[i % len(topics)]} first spread beyond its home region, who "
            f"paid for it, and which sources disagree. Keep notes for the final report; this is "
            f"sub-question {i % 7} of the plan.")


def _post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes,
                                                                 list[tuple[float, int]], float]:
    t0 = time.perf_counter()
    conn.request("POST", PATH, body, {"content-type": "application/json"})
    resp = conn.getresponse()
    pieces: list[bytes] = []
    chunks: list[tuple[float, int]] = []
    while True:
        data = resp.read1()
        if not data:
            break
        pieces.append(data)
        chunks.append((time.perf_counter() - t0, len(data)))
    resp.read()  # marks the response complete, so the connection can carry the next request
    return resp.status, resp.reason, resp.getheaders(), b"".join(pieces), chunks, time.perf_counter() - t0


def write_session(repo: Repo, steps: int) -> tuple[str, list[tuple[bytes, bool, bytes]], int]:
    """Record ``steps`` real exchanges with the fake LLM.

    Returns the session id, each step's (request body, streamed?, response body), and the raw bytes.
    """
    calls: list[tuple[bytes, bool, bytes]] = []
    raw = 0
    history: list[dict] = []
    w = repo.create_session(name="replay-bench", command=["python", "agent.py"], cwd="/tmp")
    with FakeLLM() as fake:
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=30)
        for i in range(steps):
            history.append({"role": "user", "content": _question(i)})
            stream = i % 3 == 2
            req: dict = {"model": "gpt-4o-mini", "temperature": 0.2,
                         "messages": [{"role": "system", "content": _SYSTEM}] + history[-WINDOW:]}
            if stream:
                req["stream"] = True
                req["stream_options"] = {"include_usage": True}
            body = orjson.dumps(req)
            started = time.time()
            status, reason, headers, data, chunks, took = _post(conn, body)
            if status != 200:
                raise RuntimeError(f"the fake LLM answered {status}: {data[:200]!r}")
            answer = (orjson.loads(data)["choices"][0]["message"]["content"] if not stream
                      else f"(streamed answer to step {i})")
            history.append({"role": "assistant", "content": answer})
            ex = Exchange(Request("POST", "https", "api.openai.com", PATH,
                                  [("content-type", "application/json"), ("user-agent", "OpenAI/Python 1.99")],
                                  body),
                          Response(status, reason, headers, data, chunks), started, took)
            w.append(ex, step_info(ex, i + 1, w.id, hint="openai"))
            calls.append((body, stream, data))
            raw += len(body) + len(data)
        conn.close()
    w.finish(EndInfo(exit_code=0))
    return w.id, calls, raw


def drive(port: int, calls: list[tuple[bytes, bool, bytes]], seconds: float) -> dict:
    """Send the recorded requests in order through the replaying proxy; check every body."""
    client = SyncClient(port, "/openai")
    got: list[bytes] = []
    lat: list[float] = []
    bad_status = 0
    deadline = Deadline(seconds)
    t0 = time.perf_counter()
    try:
        for body, _stream, _ in calls:
            if deadline.passed:
                break
            t = time.perf_counter()
            conn = client.conn
            assert conn is not None
            conn.request("POST", "/openai" + PATH, body, HEADERS)
            resp = conn.getresponse()
            data = resp.read()
            lat.append(time.perf_counter() - t)
            if resp.status != 200:
                bad_status += 1
            got.append(data)
            if resp.will_close:
                client.close()
                client._open()
    except (OSError, http.client.HTTPException) as e:
        return {"error": f"{type(e).__name__}: {e}", "steps": len(got)}
    finally:
        client.close()
    wall = time.perf_counter() - t0
    identical = sum(a == c[2] for a, c in zip(got, calls, strict=False))
    return {"steps": len(got), "wall": wall, "steps_per_second": len(got) / wall if wall else 0.0,
            "identical": identical, "bad_status": bad_status, "latency": summary_ms(lat)}


def run(steps: int = 1000, seconds: float = 60) -> tuple[list[dict], dict]:
    tmp = scratch_dir("rewind-bench-replay-")
    try:
        repo = Repo.init(tmp)
        t0 = time.perf_counter()
        sid, calls, raw = write_session(repo, steps)
        written = time.perf_counter() - t0
        with Server("replay", "--repo", str(tmp), "--session", sid) as server:
            result = drive(server.port, calls, seconds)
            load = server.info.get("load_seconds", 0.0)
            final = server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data = {"steps": steps, "raw_bytes": raw, "write_seconds": written, "load_seconds": load,
            "drive": result, "server": final}
    rows: list[dict] = []
    if "error" in result:
        rows.append(row(SECTION, f"replay of a {steps}-step session", result["error"], ">= 300 steps/s",
                        verdict(False)))
        return rows, data
    sps = result["steps_per_second"]
    rows.append(row(SECTION, f"replay of a {steps}-step session, one keep-alive client",
                    f"{sps:.0f} steps/s", f">= {TARGET_STEPS_PER_SECOND} steps/s",
                    verdict(sps >= TARGET_STEPS_PER_SECOND and result["steps"] == steps)))
    lat = result["latency"]
    rows.append(row(SECTION, "  per step p50 / p99", f"{lat['p50']:.2f} / {lat['p99']:.2f} ms",
                    f"{raw / steps / 1024:.1f} KB per exchange"))
    rows.append(row(SECTION, "  answers byte-identical to the recording", f"{result['identical']} / {steps}",
                    f"misses {final.get('misses', '?')}",
                    verdict(result["identical"] == steps and not final.get("misses"))))
    rows.append(row(SECTION, "  loading the timeline + match keys before serving", f"{load:.2f} s"))
    rows.append(row(SECTION, "  writing the session with SessionWriter (incl. pack)", f"{written:.1f} s",
                    f"{steps / written:.0f} steps/s"))
    return rows, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=1000)
    args = ap.parse_args()
    rows, data = run(args.steps)
    print_table(rows)
    write_results("replay", {"rows": rows, **data})


if __name__ == "__main__":
    main()
