"""Packing: a long session's growing conversation ends at about its unique content."""

from __future__ import annotations

import random
import time

import orjson

from rewind_vcs.providers.synthesis import BodyShape
from rewind_vcs.store import format as fmt
from rewind_vcs.store.pack import gc, loose_object_ids
from rewind_vcs.store.records import EndInfo, Exchange, Request, Response
from rewind_vcs.testing.builders import reply_body
from tests import factories


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                    for _ in range(n))


def growing_session(repo, steps: int = 200) -> tuple[int, int]:
    """Record a session whose every request repeats the whole conversation so far.

    Returns (raw bytes stored, unique bytes): raw counts every request and
    response body and every record as written; unique counts only what each
    step adds that no earlier step had (the new messages, the response, the
    step's own records).
    """
    rng = random.Random(7)
    messages = [{"role": "system", "content": "You are a careful research agent. " * 5}]
    w = repo.create_session(name="growing", command=["python", "agent.py"])
    raw = unique = 0
    prev_len = 0
    for i in range(steps):
        messages.append({"role": "user" if i % 2 == 0 else "tool", "content": _words(rng, 30)})
        req_body = orjson.dumps({"model": "gpt-4o-mini", "messages": messages, "temperature": 0.2})
        answer = _words(rng, 40)
        resp_body = reply_body("openai", answer, usage=(len(req_body) // 4, 40), shape=BodyShape(id_seed=str(i)))
        messages.append({"role": "assistant", "content": answer})
        ex = Exchange(Request("POST", "https", "api.openai.com", "/v1/chat/completions",
                              [("content-type", "application/json")], req_body),
                      Response(200, "OK", [("content-type", "application/json")], resp_body,
                               [(0.01, len(resp_body))]),
                      time.time(), 0.01)
        info = factories.info(summary=answer[:60])
        w.append(ex, info)
        records = sum(len(fmt.dumps(r)) for r in (
            fmt.step_to_record(info),
            fmt.request_meta("POST", "https", "api.openai.com", "/v1/chat/completions", ex.request.headers),
            fmt.response_meta(200, "OK", ex.response.headers, ex.response.chunks, None, "")))
        raw += len(req_body) + len(resp_body) + records
        unique += (len(req_body) - prev_len) + len(resp_body) + records
        prev_len = len(req_body)
    w.finish(EndInfo(exit_code=0))
    return raw, unique


def _pack_bytes(repo) -> int:
    return sum(p.stat().st_size for p in (repo.path / "objects" / "pack").glob("*.pack"))


def test_two_hundred_step_growing_session_packs_to_its_unique_content(repo, fsck):
    raw, unique = growing_session(repo, 200)
    packed = _pack_bytes(repo)
    print(f"\n200 steps: raw {raw:,} B, unique {unique:,} B, packed {packed:,} B "
          f"({packed / unique:.2f}x unique, raw/packed {raw / packed:.0f}x)")
    assert raw > 20 * unique  # the quadratic growth is real
    assert packed <= 1.2 * unique
    assert not loose_object_ids(repo)  # the loose copies are gone
    assert len(repo.timeline("growing").steps) == 200
    fsck(repo)


def test_gc_packs_everything_into_one_pack(repo, fsck):
    for i in range(3):
        w = repo.create_session(command=["x"])
        for j in range(3):
            w.append(factories.exchange(f"{i}-{j}"), factories.info())
        w.finish(EndInfo(exit_code=0), pack=(i == 0))
    assert loose_object_ids(repo)
    gc(repo)
    assert not loose_object_ids(repo)
    assert len(list((repo.path / "objects" / "pack").glob("*.pack"))) == 1
    assert (repo.path / "packed-refs").exists()
    assert len(repo.sessions(use_cache=False)) == 3
    fsck(repo)
