"""A repository written by rewind 0.1.0 (format 1) must keep reading, forever; newer formats are refused.

``tests/golden/repo-format-1.tar.gz`` was written once by the old code
(``tests/golden/make_repo_format_1.py``): session ``alpha`` (3 steps, exit 0,
packed) with a fork ``try`` at step 1 and a tag ``good`` on step 2, and
session ``beta`` (2 steps, loose objects) left incomplete. Never regenerate it;
a new format gets a fixture of its own beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from rewind_vcs.errors import FormatError, FormatTooNewError
from rewind_vcs.store.check import check_repository
from rewind_vcs.store.records import SessionStatus
from rewind_vcs.store.repo import Repo

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "repo-format-1.tar.gz"
ALPHA, BETA = "b089db51b674", "e27a356ffd25"


@pytest.fixture
def golden(tmp_path: Path) -> Repo:
    with tarfile.open(GOLDEN) as tar:
        tar.extractall(tmp_path, filter="data")
    return Repo.open(tmp_path)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REWIND_DIR", "REWIND_DEBUG")}
    return subprocess.run([sys.executable, "-m", "rewind_vcs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_log(golden: Repo) -> None:
    rows = [(s.id, s.name, s.steps, s.tokens, s.status, s.timelines, s.exit_code) for s in golden.sessions()]
    assert rows == [
        (BETA, "beta", 2, 30, SessionStatus.INCOMPLETE, 1, None),
        (ALPHA, "alpha", 3, 45, SessionStatus.OK, 2, 0),
    ]
    assert golden.session(ALPHA).info.command == ["python", "agent.py"]


def test_resolve(golden: Repo) -> None:
    assert golden.resolve("latest").session_id == BETA
    tag = golden.resolve("good")
    assert (tag.session_id, tag.timeline, tag.step) == (ALPHA, "main", 2)
    fork = golden.resolve("alpha/try")
    assert (fork.session_id, fork.timeline) == (ALPHA, "try")
    assert golden.resolve("alpha/try@step-1").commit == golden.resolve("alpha@step-1").commit
    head = golden.resolve("HEAD")
    assert (head.session_id, head.timeline) == (ALPHA, "main")
    assert golden.resolve("e27a").session_id == BETA
    assert [(t.name, t.target) for t in golden.tags()] == [("good", f"{ALPHA}/main@step-2")]


def test_show(golden: Repo) -> None:
    alpha = golden.session(ALPHA)
    assert [t.name for t in alpha.timelines()] == ["main", "try"]
    try_ = alpha.timeline("try")
    assert try_.fork_point == 1 and len(try_.steps) == 2 and try_.end is not None and try_.end.exit_code == 1
    step = alpha.main.step(2)
    assert step.info.summary == "alpha step 2"
    assert json.loads(step.request.body)["messages"][-1]["content"] == "question 1"
    assert step.response.status == 200
    assert alpha.main.end is not None and alpha.main.end.stdout == b"done\n"
    beta = golden.session(BETA)
    assert beta.main.end is None and len(beta.main.steps) == 2


def test_fsck(golden: Repo) -> None:
    report = check_repository(golden)
    assert report.ok, report.problems
    assert (report.sessions, report.steps) == (2, 3 + 2 + 2)


def test_cli_reads_it(golden: Repo) -> None:
    top = golden.workdir
    log = _cli(top, "log", "--json")
    assert log.returncode == 0, log.stderr
    assert [r["id"] for r in json.loads(log.stdout)] == [BETA, ALPHA]
    show = _cli(top, "show", "good", "--json")
    assert show.returncode == 0, show.stderr
    fsck = _cli(top, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def _set_format(repo: Repo, value: str) -> None:
    config = repo.path / "config"
    config.write_text(config.read_text().replace("format = 1", f"format = {value}"))


def test_a_newer_repository_format_is_refused(golden: Repo) -> None:
    _set_format(golden, "2")
    with pytest.raises(FormatTooNewError) as err:
        Repo.open(golden.workdir)
    assert "format 2" in str(err.value) and "upgrade rewind" in str(err.value)
    with pytest.raises(FormatTooNewError):
        Repo.find(golden.workdir / "sub" if (golden.workdir / "sub").mkdir() is None else golden.workdir)
    with pytest.raises(FormatTooNewError):
        Repo.init(golden.workdir)  # init of an existing newer repository refuses too: it would not touch it
    proc = _cli(golden.workdir, "log")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "upgrade rewind" in lines[0], proc.stderr


def test_a_garbled_repository_format_is_a_format_error(golden: Repo) -> None:
    _set_format(golden, "one")
    with pytest.raises(FormatError, match="not a format number"):
        Repo.open(golden.workdir)
