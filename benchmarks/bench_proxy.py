"""The recording proxy's cost: added latency, time to first chunk, concurrency, against a direct call and mitmproxy.

Run: python benchmarks/bench_proxy.py [--quick] [--no-mitm]

Every process is separate, as under ``rewind record``: the fake upstream
(rewind_vcs.testing.fake_llm.FakeLLM, TCP_NODELAY on), the rewind proxy (set up
as ``record_run`` does: start_proxy + RecordingHandler + Recorder journalling
into a temp repository + IdleFlusher), a second rewind proxy without a
recorder (to tell the relay's cost from the recorder's), a bare asyncio byte
splice (the floor of one more Python hop), mitmdump in reverse mode, and this
client. Each figure is a difference or ratio against direct calls measured in
the same run, interleaved or in alternating blocks, because the machine is
shared and noisy; the CPU time each serving process spends per call is
measured too, being much steadier. Phases: non-streaming calls (interleaved,
back to back), sequential streams (time to first chunk), 50 concurrent paced
streams, 100 concurrent streams, and calls that arrive while the idle flusher
commits a backlog. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.clients import AsyncClient, SyncClient, chat_body  # noqa: E402
from benchmarks.common import (  # noqa: E402
    Deadline,
    Verdict,
    print_table,
    row,
    summary_ms,
    verdict,
    write_results,
)
from benchmarks.servers import Mitmdump, Server, ServerError, cpu_seconds, ensure_mitmproxy  # noqa: E402

SECTION = "proxy"
FLOOR = "asyncio splice"
#: The fake's ``slow`` fault: 20 ms between streamed chunks (about 21 chunks: a 0.4 s stream),
#: about the pace of a real model streaming 50 tokens a second.
PACED = {"x-fake-fault": "slow"}
PACE_SECONDS = 0.02


@dataclass
class Sizes:
    rounds: int  # interleaved rounds of non-streaming calls (one call per target each)
    blocks: int  # back-to-back blocks per target
    block: int  # calls per block
    streams: int  # sequential streaming calls per target
    c50_calls: int  # calls per worker, 50 concurrent paced streams
    c50_rounds: int
    c100_calls: int  # calls per worker, 100 concurrent streams
    c100_rounds: int
    backlog: int  # calls journalled before a flush starts
    during_flush: int  # interleaved pairs while that flush runs
    seconds: float  # time budget of one measuring loop


FULL = Sizes(1000, 4, 250, 300, 4, 2, 5, 2, 300, 150, 60)
QUICK = Sizes(400, 3, 120, 150, 2, 1, 3, 1, 200, 100, 30)


class Target:
    """Something to call: direct, through rewind, through mitmproxy."""

    def __init__(self, name: str, port: int, prefix: str = "", pid: int | None = None) -> None:
        self.name = name
        self.port = port
        self.prefix = prefix
        self.pid = pid  # the process serving it (for its CPU time)
        self.client = SyncClient(port, prefix)
        self.calls = 0

    def call(self, i: int) -> float:
        elapsed, status, body = self.client.call(chat_body(i))
        self.calls += 1
        if status != 200:
            raise RuntimeError(f"{self.name}: status {status}: {body[:200]!r}")
        return elapsed

    def stream(self, i: int, headers: dict[str, str] | None = None) -> tuple[float, float]:
        ttfc, total, status, size = self.client.stream(chat_body(i, stream=True), headers=headers)
        self.calls += 1
        if status != 200 or not size:
            raise RuntimeError(f"{self.name}: streaming status {status}, {size} bytes")
        return ttfc, total

    def close(self) -> None:
        self.client.close()


class Recording:
    """A rewind proxy the benchmark started, and how many calls it was sent."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.port = server.port
        self.made = 0


class Bench:
    """One run of every phase against one fake upstream; each phase starts the proxies it needs."""

    def __init__(self, sizes: Sizes, use_mitm: bool) -> None:
        self.sizes = sizes
        self.use_mitm = use_mitm
        self.tmp = Path(tempfile.mkdtemp(prefix="rewind-bench-proxy-"))  # on disk, as a user's .rewind is
        self.fake: Server | None = None
        self.recordings: list[dict] = []
        self.mitm_note = "not asked for (--no-mitm)"
        self.counter = 0

    def next(self) -> int:
        self.counter += 1
        return self.counter

    @contextmanager
    def rewind(self, mode: str = "record", commit: bool = False) -> Iterator[Recording]:
        """A fresh rewind proxy in front of the fake, stopped (and waited for) on leaving.

        A recording proxy journals every exchange; with ``commit`` its journal is turned into
        commits when it stops, as at the end of ``rewind record`` (timed, not part of any latency).
        """
        assert self.fake is not None
        repo = tempfile.mkdtemp(prefix=f"repo-{mode}-", dir=self.tmp)
        rec = Recording(Server("proxy", "--upstream", f"http://127.0.0.1:{self.fake.port}", "--repo", repo,
                               "--mode", mode))
        try:
            yield rec
        finally:
            result = rec.server.stop(timeout=300, commit=commit)
            if mode == "record":
                self.recordings.append({"made": rec.made, "committed": commit, **result})

    @contextmanager
    def splice(self) -> Iterator[Server]:
        assert self.fake is not None
        server = Server("splice", "--upstream", f"http://127.0.0.1:{self.fake.port}")
        try:
            yield server
        finally:
            server.stop()

    # -- phases ------------------------------------------------------------------------------

    def non_streaming(self) -> dict:
        s = self.sizes
        out: dict = {}
        mitm_path = None
        if self.use_mitm:
            mitm_path, self.mitm_note = ensure_mitmproxy()
        direct = Target("direct", self.fake.port, pid=self.fake.proc.pid)
        mitm = None
        with self.rewind("forward") as fwd, self.splice() as floor:
            others = [Target("rewind relay only", fwd.port, "/openai", fwd.server.proc.pid),
                      Target(FLOOR, floor.port, pid=floor.proc.pid)]
            if mitm_path is not None:
                try:
                    mitm = Mitmdump(mitm_path, self.fake.port)
                    others.append(Target("mitmproxy", mitm.port, pid=mitm.proc.pid))
                except (ServerError, OSError) as e:
                    self.mitm_note = f"mitmdump did not start: {e}"
            try:
                # Interleaved: one call per target per round, the order rotating each round.
                with self.rewind("record") as rec:
                    recording = Target("rewind", rec.port, "/openai", rec.server.proc.pid)
                    targets = [direct, recording, *others]
                    try:
                        for t in targets:  # warm-up: connections, imports, caches
                            for _ in range(50):
                                t.call(self.next())
                        times: dict[str, list[float]] = {t.name: [] for t in targets}
                        cpu0 = {t.name: cpu_seconds(t.pid) for t in targets}
                        deadline = Deadline(s.seconds)
                        for r in range(s.rounds):
                            if deadline.passed:
                                break
                            k = r % len(targets)
                            for t in targets[k:] + targets[:k]:
                                times[t.name].append(t.call(self.next()))
                        # CPU time per call of each serving process: far steadier than latency on
                        # a busy machine. The fake upstream serves every target's calls.
                        n = len(times["direct"])
                        out["cpu_ms_per_call"] = {
                            t.name: (cpu_seconds(t.pid) - cpu0[t.name]) * 1000 / (n * (len(targets) if t is direct
                                                                                     else 1))
                            for t in targets}
                    finally:
                        recording.close()
                        rec.made += recording.calls
                out["interleaved"] = {k: summary_ms(v) for k, v in times.items()}
                # Back to back: a block of calls per target in turn. Each rewind block gets a fresh
                # recording proxy, stopped before the next block, so that no idle flush of its
                # journal runs while another target is measured.
                times = {t.name: [] for t in targets}
                deadline = Deadline(s.seconds)
                for _ in range(s.blocks):
                    for t in targets:
                        if t.name != "rewind":
                            times[t.name] += [t.call(self.next()) for _ in range(s.block) if not deadline.passed]
                            continue
                        with self.rewind("record") as rec:
                            block = Target("rewind", rec.port, "/openai")
                            try:
                                for _ in range(20):
                                    block.call(self.next())
                                times[t.name] += [block.call(self.next()) for _ in range(s.block)
                                                  if not deadline.passed]
                            finally:
                                block.close()
                                rec.made += block.calls
                out["back_to_back"] = {k: summary_ms(v) for k, v in times.items()}
            finally:
                for t in [direct, *others]:
                    t.close()
                if mitm is not None:
                    mitm.stop()
        out["mitmproxy"] = self.mitm_note
        return out

    def first_chunk(self) -> dict:
        """Sequential streams, interleaved; this recording is committed at the end (its steps counted)."""
        s = self.sizes
        with self.rewind("record", commit=True) as rec, self.rewind("forward") as fwd, self.splice() as floor:
            targets = [Target("direct", self.fake.port), Target("rewind", rec.port, "/openai"),
                       Target("rewind relay only", fwd.port, "/openai"), Target(FLOOR, floor.port)]
            try:
                for t in targets:
                    for _ in range(20):
                        t.stream(self.next())
                ttfc: dict[str, list[float]] = {t.name: [] for t in targets}
                total: dict[str, list[float]] = {t.name: [] for t in targets}
                deadline = Deadline(s.seconds)
                for r in range(s.streams):
                    if deadline.passed:
                        break
                    k = r % len(targets)
                    for t in targets[k:] + targets[:k]:
                        a, b = t.stream(self.next())
                        ttfc[t.name].append(a)
                        total[t.name].append(b)
            finally:
                for t in targets:
                    t.close()
                rec.made += targets[1].calls
        return {"ttfc": {k: summary_ms(v) for k, v in ttfc.items()},
                "total": {k: summary_ms(v) for k, v in total.items()}}

    def concurrent(self, workers: int, calls: int, rounds: int, headers: dict[str, str] | None,
                   stagger: float = 0.0) -> dict:
        """``workers`` keep-alive connections streaming at once; direct and rewind rounds alternate.

        Each rewind round gets a fresh recording proxy, stopped after the round, so that no
        idle flush of one round's journal runs during the next measurement.
        """
        out: dict[str, dict] = {"direct": {"ttfc": [], "total": [], "wall": 0.0, "calls": 0, "errors": 0},
                                "rewind": {"ttfc": [], "total": [], "wall": 0.0, "calls": 0, "errors": 0}}
        timeout = self.sizes.seconds
        for _ in range(rounds):
            for name in ("direct", "rewind"):
                if name == "direct":
                    got = asyncio.run(_concurrent(self.fake.port, "", workers, calls, headers, self.counter,
                                                  timeout, stagger))
                else:
                    with self.rewind("record") as rec:
                        warm = Target("rewind", rec.port, "/openai")
                        for _ in range(10):
                            warm.call(self.next())
                        warm.close()
                        cpu0 = cpu_seconds(rec.server.proc.pid)
                        got = asyncio.run(_concurrent(rec.port, "/openai", workers, calls, headers,
                                                      self.counter, timeout, stagger))
                        out["rewind"]["cpu"] = out["rewind"].get("cpu", 0.0) + cpu_seconds(rec.server.proc.pid) - cpu0
                        rec.made += warm.calls + got["calls"] + got["errors"]
                self.counter += workers * calls
                acc = out[name]
                for key in ("ttfc", "total", "wall", "calls", "errors"):
                    acc[key] += got[key]
        result = {}
        for name, acc in out.items():
            result[name] = {"ttfc": summary_ms(acc["ttfc"]), "total": summary_ms(acc["total"]),
                            "calls": acc["calls"], "errors": acc["errors"],
                            "calls_per_second": acc["calls"] / acc["wall"] if acc["wall"] else 0.0}
        rw = out["rewind"]
        result["rewind"]["proxy_cpu_ms_per_call"] = rw.get("cpu", 0.0) * 1000 / max(1, rw["calls"])
        result["rewind"]["proxy_cpu_share"] = rw.get("cpu", 0.0) / rw["wall"] if rw["wall"] else 0.0
        return result

    def during_flush(self) -> dict:
        """Calls arriving while the idle flusher commits a backlog (pygit2 holds the GIL)."""
        s = self.sizes
        with self.rewind("record", commit=True) as rec:
            direct, rewind = Target("direct", self.fake.port), Target("rewind", rec.port, "/openai")
            try:
                deadline = Deadline(s.seconds)
                for _ in range(s.backlog):
                    if deadline.passed:
                        break
                    rewind.call(self.next())
                time.sleep(0.8)  # > IDLE_FLUSH_SECONDS + its 0.1 s poll: the flush has begun
                times: dict[str, list[float]] = {"direct": [], "rewind": []}
                t0 = time.perf_counter()
                for r in range(s.during_flush):
                    if deadline.passed:
                        break
                    for t in (direct, rewind) if r % 2 == 0 else (rewind, direct):
                        times[t.name].append(t.call(self.next()))
                window = time.perf_counter() - t0
            finally:
                direct.close()
                rewind.close()
                rec.made += rewind.calls
        last = self.recordings[-1]
        return {"backlog": s.backlog, "window_seconds": window,
                "still_pending_at_stop": last.get("pending_at_stop"),
                "calls": {k: summary_ms(v) for k, v in times.items()}}

    def run(self) -> dict:
        self.fake = Server("fake", "--slow-delay", str(PACE_SECONDS))
        data: dict = {}
        try:
            data["non_streaming"] = self.non_streaming()
            data["first_chunk"] = self.first_chunk()
            # 50 independent agents streaming: starts spread over one stream's length (~21 chunks)
            data["concurrent_50_paced"] = self.concurrent(50, self.sizes.c50_calls, self.sizes.c50_rounds, PACED,
                                                          stagger=21 * PACE_SECONDS / 50)
            data["concurrent_100"] = self.concurrent(100, self.sizes.c100_calls, self.sizes.c100_rounds, None)
            data["during_flush"] = self.during_flush()
        finally:
            self.fake.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        data["recordings"] = self.recordings
        return data


async def _concurrent(port: int, prefix: str, workers: int, calls: int, headers: dict[str, str] | None,
                      first: int, timeout: float, stagger: float) -> dict:
    """Each worker streams ``calls`` times on its own connection; worker w starts ``w * stagger`` s late.

    Staggering spreads the requests over time as independent agents would send them;
    without it, equal-length streams stay in lockstep and every call arrives in a burst of
    ``workers`` at once, which measures the upstream's queue, not the proxy.
    """
    clients = await asyncio.gather(*(AsyncClient(port, prefix).open() for _ in range(workers)))
    ttfc: list[float] = []
    total: list[float] = []
    errors = 0

    async def worker(client: AsyncClient, w: int) -> None:
        nonlocal errors
        if stagger:
            await asyncio.sleep(w * stagger)
        for k in range(calls):
            try:
                a, b, status, size = await client.stream(chat_body(first + w * calls + k, stream=True),
                                                         headers=headers)
            except (ConnectionError, OSError):
                errors += 1
                return
            if status != 200 or not size:
                errors += 1
                continue
            ttfc.append(a)
            total.append(b)

    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c, i) for i, c in enumerate(clients))), timeout)
    finally:
        wall = time.perf_counter() - t0
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    return {"ttfc": ttfc, "total": total, "wall": wall, "calls": len(ttfc), "errors": errors}


# -- the table ---------------------------------------------------------------------------------

def _ms(x: float) -> str:
    return f"{x:.2f} ms"


def _plus(x: float) -> str:
    """A difference, signed: noise can make an added time negative."""
    return f"{x:+.2f} ms"


def _added(s: dict, name: str, p: str) -> float:
    return s[name][p] - s["direct"][p]


def rows_of(data: dict) -> list[dict]:
    rows: list[dict] = []
    ns = data["non_streaming"]
    for pattern, label in (("interleaved", "interleaved"), ("back_to_back", "back to back")):
        s = ns[pattern]
        d = s["direct"]
        rows.append(row(SECTION, f"non-streaming, {label}: direct p50 / p99",
                        f"{_ms(d['p50'])} / {_ms(d['p99'])}", f"n={d['n']}"))
        a50, a99 = _added(s, "rewind", "p50"), _added(s, "rewind", "p99")
        rows.append(row(SECTION, f"  rewind record, {label}: added p50", f"{_plus(a50)}", "<= 1 ms",
                        verdict(a50 <= 1.0)))
        rows.append(row(SECTION, f"  rewind record, {label}: added p99", f"{_plus(a99)}", "<= 5 ms",
                        verdict(a99 <= 5.0)))
        rows.append(row(SECTION, f"  rewind relay only (no recorder), {label}: added p50 / p99",
                        f"{_plus(_added(s, 'rewind relay only', 'p50'))} / "
                        f"{_plus(_added(s, 'rewind relay only', 'p99'))}"))
        rows.append(row(SECTION, f"  bare asyncio splice (floor of a hop), {label}: added p50 / p99",
                        f"{_plus(_added(s, FLOOR, 'p50'))} / {_plus(_added(s, FLOOR, 'p99'))}"))
        if "mitmproxy" in s:
            m50, m99 = _added(s, "mitmproxy", "p50"), _added(s, "mitmproxy", "p99")
            rows.append(row(SECTION, f"  mitmproxy, {label}: added p50 / p99", f"{_plus(m50)} / {_plus(m99)}"))
            ratio = a50 / m50 if m50 > 0 else float("inf")
            rows.append(row(SECTION, f"  rewind added / mitmproxy added (p50), {label}", f"{ratio:.2f}x",
                            "<= 0.33x", verdict(ratio <= 1 / 3)))
        else:
            rows.append(row(SECTION, f"  mitmproxy, {label}", ns["mitmproxy"], "", Verdict.NOT_MEASURED))
    cpu = ns.get("cpu_ms_per_call", {})
    if cpu:
        parts = [f"rewind {cpu['rewind']:.2f}", f"relay only {cpu['rewind relay only']:.2f}",
                 f"splice {cpu[FLOOR]:.2f}"] + ([f"mitmproxy {cpu['mitmproxy']:.2f}"] if "mitmproxy" in cpu else [])
        rows.append(row(SECTION, "CPU per non-streaming call (ms): " + ", ".join(parts),
                        f"{cpu['rewind']:.2f} ms", f"fake upstream {cpu['direct']:.2f} ms/call"))
        if "mitmproxy" in cpu and cpu["mitmproxy"] > 0:
            rows.append(row(SECTION, "  rewind CPU / mitmproxy CPU per call",
                            f"{cpu['rewind'] / cpu['mitmproxy']:.2f}x"))
    fc = data["first_chunk"]["ttfc"]
    a50 = _added(fc, "rewind", "p50")
    rows.append(row(SECTION, "stream, sequential: direct first chunk p50 / p99",
                    f"{_ms(fc['direct']['p50'])} / {_ms(fc['direct']['p99'])}", f"n={fc['direct']['n']}"))
    rows.append(row(SECTION, "  rewind record, sequential: added to first chunk p50", f"{_plus(a50)}", "<= 2 ms",
                    verdict(a50 <= 2.0)))
    rows.append(row(SECTION, "  rewind record, sequential: added to first chunk p99",
                    f"{_plus(_added(fc, 'rewind', 'p99'))}"))
    rows.append(row(SECTION, "  rewind relay only, sequential: added to first chunk p50 / p99",
                    f"{_plus(_added(fc, 'rewind relay only', 'p50'))} / "
                    f"{_plus(_added(fc, 'rewind relay only', 'p99'))}"))
    rows.append(row(SECTION, "  bare asyncio splice, sequential: added to first chunk p50 / p99",
                    f"{_plus(_added(fc, FLOOR, 'p50'))} / {_plus(_added(fc, FLOOR, 'p99'))}"))
    c = data["concurrent_50_paced"]
    d, r = c["direct"]["ttfc"], c["rewind"]["ttfc"]
    a50 = r["p50"] - d["p50"]
    pace = f"{PACE_SECONDS * 1000:.0f} ms/chunk"
    rows.append(row(SECTION, f"50 concurrent streams ({pace}): direct first chunk p50 / p99",
                    f"{_ms(d['p50'])} / {_ms(d['p99'])}", f"n={d['n']}"))
    rows.append(row(SECTION, "  rewind record, 50 concurrent: added to first chunk p50", f"{_plus(a50)}", "<= 5 ms",
                    verdict(a50 <= 5.0)))
    rows.append(row(SECTION, "  rewind record, 50 concurrent: added to first chunk p99",
                    f"{_plus(r['p99'] - d['p99'])}"))
    rows.append(row(SECTION, "  rewind proxy CPU per streamed call (50 concurrent); busy share of one core",
                    f"{c['rewind']['proxy_cpu_ms_per_call']:.2f} ms; {c['rewind']['proxy_cpu_share']:.0%}"))
    c = data["concurrent_100"]
    d, r = c["direct"], c["rewind"]
    rows.append(row(SECTION, "100 concurrent streams: throughput direct / rewind",
                    f"{d['calls_per_second']:.0f} / {r['calls_per_second']:.0f} calls/s",
                    f"rewind {r['calls_per_second'] / d['calls_per_second']:.2f}x direct"))
    rows.append(row(SECTION, "  rewind proxy CPU per streamed call (100 concurrent); busy share of one core",
                    f"{r['proxy_cpu_ms_per_call']:.2f} ms; {r['proxy_cpu_share']:.0%}"))
    rows.append(row(SECTION, "100 concurrent streams: call p99 direct / rewind",
                    f"{_ms(d['total']['p99'])} / {_ms(r['total']['p99'])}",
                    f"errors {d['errors']} / {r['errors']}",
                    verdict(d["errors"] == 0 and r["errors"] == 0)))
    f = data["during_flush"]
    fcalls = f["calls"]
    rows.append(row(SECTION, f"calls during a flush of {f['backlog']} journalled steps: added p50 / p99",
                    f"{_plus(_added(fcalls, 'rewind', 'p50'))} / {_plus(_added(fcalls, 'rewind', 'p99'))}",
                    f"{f['window_seconds']:.1f} s window"))
    recs = data["recordings"]
    made = sum(r["made"] for r in recs)
    journalled = sum(r.get("journalled", 0) for r in recs)
    errors = [e for r in recs for e in (r.get("errors") or [])] + [r["error"] for r in recs if "error" in r]
    rows.append(row(SECTION, "every call through rewind record was journalled", f"{journalled} / {made}",
                    f"{len(errors)} proxy errors", verdict(journalled == made and not errors)))
    done = [r for r in recs if r["committed"]]
    steps = sum(r.get("steps", 0) for r in done)
    rows.append(row(SECTION, "  ... and committed as a step (recordings finished with commits)",
                    f"{steps} / {sum(r['made'] for r in done)}", "",
                    verdict(steps == sum(r["made"] for r in done))))
    pend = sum(r.get("pending_at_stop", 0) for r in done)
    secs = sum(r.get("finish_seconds", 0.0) for r in done)
    if pend and secs:
        rows.append(row(SECTION, "  journal -> commits when a recording ends",
                        f"{pend / secs:.0f} steps/s", f"{pend} steps in {secs:.1f} s"))
    return rows


def run(quick: bool = False, use_mitm: bool = True) -> tuple[list[dict], dict]:
    sizes = QUICK if quick else FULL
    data = Bench(sizes, use_mitm).run()
    data["sizes"] = asdict(sizes)
    return rows_of(data), data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-mitm", action="store_true")
    args = ap.parse_args()
    rows, data = run(args.quick, not args.no_mitm)
    print_table(rows)
    write_results("proxy", {"rows": rows, **data})


if __name__ == "__main__":
    main()

