"""The whole benchmark suite in one command: a table of figures against their targets, and JSON.

Run:  python benchmarks/run_all.py [--quick] [--no-mitm] [--only proxy,replay,...]

Sections (each measured beside its own baseline in the same run, as ratios or
differences, because the machine is shared and noisy):

- proxy:    added latency of the recording proxy vs a direct call (interleaved and
            back to back), vs mitmproxy; first chunk of a stream, sequential and with
            50 concurrent streams; 100 concurrent streams (benchmarks/bench_proxy.py)
- replay:   a 1,000-step session served to one keep-alive client (bench_replay.py)
- storage:  a 200-step growing session on disk vs raw, unique, per-body zstd (bench_storage.py)
- log:      `rewind log` on 10,000 sessions (2,000 with --quick) vs `git log` (bench_log.py)
- analysis: `diff`/`bisect` of two 1,000-step sessions (bench_analysis.py, when present)
- startup:  `rewind --help` vs `python -c pass`

The table is printed at the end; results/run_all.json keeps every figure, the
machine (cores, Python, load average) and the command. A row marked MISS
missed its target; docs/PERFORMANCE.md says why.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (  # noqa: E402
    RESULTS,
    ROOT,
    Verdict,
    interleaved,
    machine,
    median_ms,
    print_table,
    row,
    scratch_dir,
    verdict,
    write_results,
)

SECTIONS = ("proxy", "replay", "storage", "log", "analysis", "startup")
REWIND = [sys.executable, "-m", "rewind_vcs"]


def section_proxy(args: argparse.Namespace) -> tuple[list[dict], dict]:
    from benchmarks import bench_proxy

    return bench_proxy.run(quick=args.quick, use_mitm=not args.no_mitm)


def section_replay(args: argparse.Namespace) -> tuple[list[dict], dict]:
    from benchmarks import bench_replay

    return bench_replay.run(steps=1000)


def section_storage(args: argparse.Namespace) -> tuple[list[dict], dict]:
    from benchmarks import bench_storage

    return bench_storage.run(steps=200)


def section_log(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """bench_log's repository builder, then the same interleaved timings as its main()."""
    from benchmarks import bench_log

    sessions = 2_000 if args.quick else 10_000
    runs = 3 if args.quick else 5
    where = scratch_dir("rewind-bench-log-")
    try:
        t0 = time.perf_counter()
        repo = bench_log.build(where, sessions)
        built = time.perf_counter() - t0
        env = {**os.environ, "COLUMNS": "120"}
        (repo.path / "cache" / "sessions.json").unlink(missing_ok=True)
        cold = interleaved({"cold": REWIND + ["log", "--json"]}, runs=1, cwd=str(where), env=env)["cold"]
        t = interleaved({
            "rewind log": REWIND + ["log"],
            "rewind log --json": REWIND + ["log", "--json"],
            "rewind log -n 20": REWIND + ["log", "-n", "20"],
            "git log --oneline --all": ["git", "--git-dir", str(repo.path), "log", "--oneline", "--all"],
        }, runs=runs, cwd=str(where), env=env)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    git_ms = median_ms(t["git log --oneline --all"])
    section = "log"
    rows = [row(section, f"`git log --oneline --all` on {sessions:,} sessions", f"{git_ms:.0f} ms", "baseline")]
    rows.append(row(section, "rewind log --json, cold cache (first run)", f"{median_ms(cold):.0f} ms",
                    f"{median_ms(cold) / git_ms:.2f}x git"))
    for name in ("rewind log", "rewind log --json", "rewind log -n 20"):
        ms = median_ms(t[name])
        rows.append(row(section, name, f"{ms:.0f} ms ({ms / git_ms:.2f}x git)", "<= 300 ms", verdict(ms <= 300)))
    data = {"sessions": sessions, "runs": runs, "build_seconds": built,
            "ms": {"cold": median_ms(cold), **{k: median_ms(v) for k, v in t.items()}}}
    return rows, data


def section_analysis(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """bench_analysis.py (another engineer's script) in a subprocess; its figures from results/analysis.json."""
    section = "analysis"
    script = ROOT / "benchmarks" / "bench_analysis.py"
    if not script.exists():
        return [row(section, "diff / bisect of two 1,000-step sessions", "bench_analysis.py missing", "<= 1 s",
                    Verdict.NOT_MEASURED)], {"error": "bench_analysis.py missing"}
    out = RESULTS / "analysis.json"
    started = time.time()
    cmd = [sys.executable, str(script), "--runs", "3" if args.quick else "5"]
    try:
        proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=300)
        failed = proc.returncode != 0
        detail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    except subprocess.TimeoutExpired:
        failed, detail = True, "timed out after 300 s"
    if failed or not out.exists() or out.stat().st_mtime < started:
        return [row(section, "diff / bisect of two 1,000-step sessions", "bench_analysis.py failed", detail[:60],
                    Verdict.NOT_MEASURED)], {"error": detail}
    data = json.loads(out.read_text())
    ms = data.get("ms", {})
    steps = data.get("steps", "?")
    rows = []
    read = ms.get("read")
    if read is not None:
        rows.append(row(section, f"read both sessions' steps ({steps} each)", f"{read:.0f} ms", "baseline"))
    labels = (("diff", "diff (library)"), ("bisect", f"bisect (library, departs at {data.get('diverge_at')})"),
              ("bisect_identical", "bisect of two recordings of one run"))
    for key, label in labels:
        if key in ms:
            ratio = f" ({ms[key] / read:.1f}x read)" if read else ""
            rows.append(row(section, label, f"{ms[key]:.0f} ms{ratio}", "<= 1000 ms", verdict(ms[key] <= 1000)))
    startup = ms.get("rewind log (baseline: start-up)")
    for key in ("rewind diff --json", "rewind bisect --json"):
        if key in ms:
            extra = f" (start-up {startup:.0f} ms)" if startup else ""
            rows.append(row(section, key + " (CLI)", f"{ms[key]:.0f} ms", "<= 1000 ms + start-up" + extra,
                            verdict(ms[key] <= 1000 + (startup or 0))))
    return rows, data


def section_startup(args: argparse.Namespace) -> tuple[list[dict], dict]:
    t = interleaved({"rewind --help": REWIND + ["--help"], "python -c pass": [sys.executable, "-c", "pass"]},
                    runs=7, cwd=tempfile.gettempdir())
    h, p = median_ms(t["rewind --help"]), median_ms(t["python -c pass"])
    rows = [row("startup", "python -c pass", f"{p:.0f} ms", "baseline (interpreter start)"),
            row("startup", "rewind --help", f"{h:.0f} ms ({h / p:.1f}x python)", "<= 250 ms", verdict(h <= 250))]
    return rows, {"ms": {"rewind --help": h, "python -c pass": p}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer samples, 2,000 sessions for log (a few minutes)")
    ap.add_argument("--no-mitm", action="store_true", help="skip the mitmproxy comparison")
    ap.add_argument("--only", default="", help="comma-separated sections: " + ",".join(SECTIONS))
    args = ap.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    command = " ".join(["python", "benchmarks/run_all.py", *sys.argv[1:]])
    before = machine()
    print(f"rewind benchmarks: {command}\n{before['cpus']} cpus, Python {before['python']}, {before['platform']}, "
          f"{before['date']}, load average {before['load_average_1m']}", flush=True)
    rows: list[dict] = []
    data: dict = {}
    t_all = time.perf_counter()
    for name in only:
        t0 = time.perf_counter()
        print(f"-- {name} ...", end=" ", flush=True)
        try:
            got_rows, got = globals()[f"section_{name}"](args)
        except Exception as e:  # one broken section must not hide the others' figures
            traceback.print_exc()
            got_rows, got = [row(name, "section failed", f"{type(e).__name__}: {e}"[:80], "", Verdict.MISS)], {
                "error": repr(e)}
        took = time.perf_counter() - t0
        print(f"{took:.0f} s", flush=True)
        rows += got_rows
        data[name] = {**got, "seconds": took}
    total = time.perf_counter() - t_all
    print()
    print_table(rows)
    after = machine()
    misses = [r for r in rows if r["verdict"] == Verdict.MISS]
    print(f"\n{len(rows)} rows, {len(misses)} missed their target; {total:.0f} s in all; "
          f"load average {before['load_average_1m']} -> {after['load_average_1m']}")
    path = write_results("run_all", {"command": command, "seconds": total,
                                     "load_average_before": before["load_average_1m"],
                                     "load_average_after": after["load_average_1m"], "rows": rows, "sections": data})
    print(f"figures: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
