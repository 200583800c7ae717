"""`rewind log` over 10,000 sessions vs `git log --oneline --all`, and `rewind --help` start-up.

Run: python benchmarks/bench_log.py [--sessions N]
Targets (issue A): log <= 300 ms; --help <= 250 ms. Both are printed beside a
baseline run interleaved with them (git log; python -c pass), as ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import interleaved, median_ms, report  # noqa: E402
from rewind_vcs.store.pack import gc  # noqa: E402
from rewind_vcs.store.records import EndInfo  # noqa: E402
from rewind_vcs.store.repo import Repo  # noqa: E402
from tests import factories  # noqa: E402


def build(path: Path, sessions: int) -> Repo:
    repo = Repo.init(path)
    t0 = time.perf_counter()
    for i in range(sessions):
        w = repo.create_session(name=f"run-{i % 50}", command=["python", "agent.py"])
        w.append(factories.exchange(f"q{i}"), factories.info())
        w.finish(EndInfo(exit_code=int(i % 7 == 0)), pack=False)
    gc(repo)
    print(f"built {sessions} sessions in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return repo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--keep", help="build (or reuse) the repository here")
    args = ap.parse_args()
    where = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="rewind-bench-log-"))
    repo = Repo.open(where) if (where / ".rewind").exists() else build(where, args.sessions)
    rewind = [sys.executable, "-m", "rewind_vcs"]
    env = {**os.environ, "COLUMNS": "120"}
    cache = repo.path / "cache" / "sessions.json"
    cache.unlink(missing_ok=True)
    cold = interleaved({"rewind log --json (cold cache)": rewind + ["log", "--json"]}, runs=1, cwd=str(where),
                       env=env)
    t = interleaved({
        "rewind log": rewind + ["log"],
        "rewind log --json": rewind + ["log", "--json"],
        "rewind log -n 20": rewind + ["log", "-n", "20"],
        "git log --oneline --all": ["git", "--git-dir", str(repo.path), "log", "--oneline", "--all"],
    }, runs=args.runs, cwd=str(where), env=env)
    h = interleaved({
        "rewind --help": rewind + ["--help"],
        "python -c pass": [sys.executable, "-c", "pass"],
    }, runs=args.runs, cwd=str(where), env=env)
    git_ms = median_ms(t["git log --oneline --all"])
    py_ms = median_ms(h["python -c pass"])
    rows = [(k, f"{median_ms(v):7.0f} ms", "") for k, v in cold.items()]
    for k, v in t.items():
        target = "<= 300 ms" if k.startswith("rewind log") else "baseline"
        rows.append((k, f"{median_ms(v):7.0f} ms  ({median_ms(v) / git_ms:4.2f}x git)", target))
    rows.append(("rewind --help", f"{median_ms(h['rewind --help']):7.0f} ms", "<= 250 ms"))
    rows.append(("python -c pass", f"{py_ms:7.0f} ms", "baseline (interpreter start)"))
    report("log", rows, {"sessions": args.sessions, "ms": {k: median_ms(v) for k, v in {**cold, **t, **h}.items()}})
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
