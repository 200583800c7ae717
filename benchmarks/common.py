"""Shared helpers for the benchmark scripts: timing commands side by side and printing ratios."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def time_command(cmd: list[str], *, runs: int = 7, cwd: str | None = None, env: dict | None = None) -> list[float]:
    """Wall-clock seconds of ``runs`` runs of ``cmd`` (output discarded)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t0)
    return out


def interleaved(cmds: dict[str, list[str]], *, runs: int = 7, cwd: str | None = None,
                env: dict | None = None) -> dict[str, list[float]]:
    """Time several commands alternately, so machine noise hits them all alike."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name] += time_command(cmd, runs=1, cwd=cwd, env=env)
    return times


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def machine() -> dict:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def report(name: str, rows: list[tuple[str, str, str]], data: dict) -> None:
    """Print a table of (measure, figure, target) and write results/<name>.json."""
    width = max(len(r[0]) for r in rows)
    print(f"\n== {name} ({machine()['date']}, {machine()['cpus']} cpus, Python {machine()['python']})")
    for measure, figure, target in rows:
        print(f"  {measure:<{width}}  {figure:>24}   {target}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=2))


# -- helpers for the run_all suite -------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def percentile(xs: list[float], p: float) -> float:
    """The ``p``-th percentile (0-100) of ``xs``, linearly interpolated between ranks."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(xs: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/n of a list of seconds, in milliseconds."""
    return {
        "n": len(xs),
        "p50": percentile(xs, 50) * 1000,
        "p90": percentile(xs, 90) * 1000,
        "p99": percentile(xs, 99) * 1000,
        "mean": (sum(xs) / len(xs) * 1000) if xs else float("nan"),
    }


class Deadline:
    """A time budget for a loop: ``while n < limit and not deadline.passed: ...``."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.end

    @property
    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def tree_bytes(path: Path) -> int:
    """Sum of the sizes of every file under ``path``."""
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


class Verdict:
    OK = "ok"
    MISS = "MISS"
    INFO = ""
    NOT_MEASURED = "not measured"


def verdict(ok: bool) -> str:
    return Verdict.OK if ok else Verdict.MISS


def row(section: str, measure: str, figure: str, target: str = "", result: str = Verdict.INFO) -> dict:
    """One line of the suite's table: what, the figure, the target, and whether the target was met."""
    return {"section": section, "measure": measure, "figure": figure, "target": target, "verdict": result}


def print_table(rows: list[dict], out=None) -> None:
    """Rows grouped by section, aligned; misses marked."""
    out = out or sys.stdout
    mw = max((len(r["measure"]) for r in rows), default=10)
    fw = max((len(r["figure"]) for r in rows), default=10)
    tw = max((len(r["target"]) for r in rows), default=6)
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            print(f"\n[{section}]", file=out)
        print(f"  {r['measure']:<{mw}}  {r['figure']:>{fw}}  {r['target']:<{tw}}  {r['verdict']}", file=out)


def write_results(name: str, data: dict) -> Path:
    """results/<name>.json with the machine's description."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str))
    return path


def scratch_dir(prefix: str) -> Path:
    """A temporary directory, in RAM (/dev/shm) when there is one.

    For repositories a benchmark only builds in order to read them: building
    thousands of loose objects on a slow disk takes minutes, and reads come
    from the page cache either way.
    """
    import tempfile

    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))
