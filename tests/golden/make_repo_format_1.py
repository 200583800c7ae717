"""How ``repo-format-1.tar.gz`` was made (once, by rewind 0.1.0 writing format 1). Kept as a record.

Do not re-run it to "refresh" the fixture: the point of a golden file is
that it was written by the old code and the new code must keep reading it.
A new format gets a new fixture (``repo-format-2.tar.gz``) beside this one.

    cd <a checkout of the old rewind> && python -m tests.golden.make_repo_format_1 OUT.tar.gz
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from rewind_vcs.store.records import EndInfo
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from tests import factories

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def build(top: Path) -> Repo:
    repo = Repo.init(top)
    # alpha: 3 steps, closed (exit 0), a fork "try" at step 1 with one new step, a tag on step 2
    w = repo.create_session(name="alpha", command=["python", "agent.py"], cwd="/work", started_at=T0)
    for i in range(3):
        w.append(factories.exchange(f"question {i}"), factories.info(summary=f"alpha step {i + 1}"))
    w.finish(EndInfo(exit_code=0, stdout=b"done\n", ended_at=T0 + 60))
    alpha = w.id
    step1 = repo.session(alpha).main.steps[0].commit_id
    f = SessionWriter.fork(repo, alpha, step1, "try")
    f.append(factories.exchange("another way"), factories.info(summary="try step 2"))
    f.finish(EndInfo(exit_code=1, ended_at=T0 + 120))
    import pygit2  # the tag as plain git writes it (``rewind tag good alpha@step-2``)

    step2 = repo.session(alpha).main.steps[1].commit_id
    repo.git.references.create("refs/tags/good", pygit2.Oid(hex=step2))
    # beta: 2 steps, left incomplete (no closing commit: the recorder died)
    w = repo.create_session(name="beta", command=["node", "agent.js"], cwd="/work", started_at=T0 + 300)
    for i in range(2):
        w.append(factories.exchange(f"beta {i}"), factories.info(summary=f"beta step {i + 1}"))
    w.close()
    repo.set_head(f"refs/sessions/{alpha}/main")
    return repo


def main(out: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = build(Path(tmp))
        shutil.rmtree(repo.path / "cache", ignore_errors=True)
        for lease in (repo.path / "locks").glob("*"):
            lease.unlink()
        with tarfile.open(out, "w:gz") as tar:
            tar.add(repo.path, arcname=".rewind")


if __name__ == "__main__":
    main(sys.argv[1])
