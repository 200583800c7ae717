"""Storage of a 200-step session whose conversation grows: bytes on disk against raw, unique and per-body zstd.

Run: python benchmarks/bench_storage.py [--steps N]

The session comes from the generator of tests/store/test_pack.py
(``growing_session``: every request repeats the whole conversation so far, so
raw bytes grow as N squared). Compared: the session's pack on disk (and the
whole ``.rewind`` directory), the raw bytes, the unique content (what each
step adds), and what a blob store compressing each body with zstd would keep.
Targets (issue E): pack <= 1x the unique content and >= 20x smaller than per-body zstd.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import zstandard  # noqa: E402

from benchmarks.common import print_table, row, tree_bytes, verdict, write_results  # noqa: E402
from rewind_vcs.store.pack import loose_object_ids  # noqa: E402
from rewind_vcs.store.repo import Repo  # noqa: E402
from tests.store.test_pack import growing_session  # noqa: E402

SECTION = "storage"


def _kb(n: int) -> str:
    if n < 10 * 1024:
        return f"{n:,} B"
    return f"{n / 1024:,.0f} KB" if n < 10 * 1024 * 1024 else f"{n / 1024 / 1024:,.1f} MB"


def run(steps: int = 200) -> tuple[list[dict], dict]:
    tmp = Path(tempfile.mkdtemp(prefix="rewind-bench-storage-"))
    try:
        repo = Repo.init(tmp)
        empty = tree_bytes(repo.path)
        t0 = time.perf_counter()
        raw, unique = growing_session(repo, steps)
        write_seconds = time.perf_counter() - t0
        packs = list((repo.path / "objects" / "pack").glob("*.pack"))
        pack = sum(p.stat().st_size for p in packs)
        pack_idx = pack + sum(p.stat().st_size for p in (repo.path / "objects" / "pack").glob("*.idx"))
        whole = tree_bytes(repo.path)
        loose = len(loose_object_ids(repo))
        zc = zstandard.ZstdCompressor(level=3)
        bodies = per_body = 0
        for step in repo.timeline("growing").steps:
            for body in (step.request.body, step.response.body):
                bodies += len(body)
                per_body += len(zc.compress(body))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    data = {"steps": steps, "raw_bytes": raw, "unique_bytes": unique, "body_bytes": bodies,
            "per_body_zstd_bytes": per_body, "pack_bytes": pack, "pack_and_index_bytes": pack_idx,
            "rewind_dir_bytes": whole, "empty_rewind_dir_bytes": empty, "loose_objects_left": loose,
            "packs": len(packs), "write_seconds": write_seconds}
    rows = [
        row(SECTION, f"{steps}-step growing session: raw bytes (bodies + records)", _kb(raw),
            f"{raw / unique:.0f}x unique"),
        row(SECTION, "  unique content (what each step adds)", _kb(unique)),
        row(SECTION, "  per-body zstd -3 (a blob store)", _kb(per_body), f"{raw / per_body:.1f}x smaller than raw"),
        row(SECTION, "  rewind pack on disk", _kb(pack), f"{len(packs)} pack(s), {loose} loose objects left"),
        row(SECTION, "  pack / unique content", f"{pack / unique:.2f}x", "<= 1x", verdict(pack <= unique)),
        row(SECTION, "  per-body zstd / pack", f"{per_body / pack:.1f}x", ">= 20x", verdict(per_body >= 20 * pack)),
        row(SECTION, "  pack + index; whole .rewind directory", f"{_kb(pack_idx)}; {_kb(whole)}",
            f"empty repo {_kb(empty)}"),
    ]
    return rows, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    rows, data = run(args.steps)
    print_table(rows)
    write_results("storage", {"rows": rows, **data})


if __name__ == "__main__":
    main()
