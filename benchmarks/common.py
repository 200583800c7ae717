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
    }


def report(name: str, rows: list[tuple[str, str, str]], data: dict) -> None:
    """Print a table of (measure, figure, target) and write results/<name>.json."""
    width = max(len(r[0]) for r in rows)
    print(f"\n== {name} ({machine()['date']}, {machine()['cpus']} cpus, Python {machine()['python']})")
    for measure, figure, target in rows:
        print(f"  {measure:<{width}}  {figure:>24}   {target}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({"machine": machine(), **data}, indent=2))
