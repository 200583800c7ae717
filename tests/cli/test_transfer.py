"""``rewind export`` and ``rewind import``, driven as a user types them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import sys
from pathlib import Path

import pytest

from rewind_vcs.demo.run import run_demo
from rewind_vcs.store.repo import Repo
from tests.e2e.conftest import offline_env, run_rewind
from tests.transfer import rw as rwfile


def snapshot(rewind_dir: Path) -> dict[str, str]:
    out = {}
    for root, dirs, files in os.walk(rewind_dir):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), rewind_dir) + "/"] = "dir"
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, rewind_dir)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "REWIND_DIR"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    """A directory where 'rewind demo' ran: sessions research-good and research-stale, tags good and bad."""
    top = tmp_path_factory.mktemp("demo")
    run_demo(Repo.init(top), python=sys.executable, env=os.environ)
    return top


@pytest.fixture(scope="module")
def all_rw(demo_dir) -> Path:
    proc = run_rewind(["export", "--all", "-o", "all.rw"], demo_dir, env())
    assert proc.returncode == 0, proc.stderr
    return demo_dir / "all.rw"


def test_export_then_import_then_replay_offline_gives_identical_output(demo_dir, all_rw, tmp_path):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    imp = run_rewind(["import", str(all_rw)], fresh, env())
    assert imp.returncode == 0, imp.stderr
    assert "Imported 2 sessions" in imp.stderr and "research-stale" in imp.stderr
    log = run_rewind(["log", "--json"], fresh, env())
    assert json.loads(log.stdout) == json.loads(run_rewind(["log", "--json"], demo_dir, env()).stdout)

    rep = run_rewind(["replay", "bad", "--yes", "--json"], fresh, offline_env())  # no upstream reachable at all
    assert rep.returncode == 0, rep.stderr
    summary = json.loads(rep.stdout[rep.stdout.index("{\n"):])
    assert summary["output_identical"] is True and summary["misses"] == 0 and summary["live"] == 0
    recorded = Repo.open(demo_dir).timeline("bad").end.stdout
    assert rep.stdout[: rep.stdout.index("{\n")].encode() == recorded


def test_export_by_ref_carries_only_that_session_and_its_tags(demo_dir, tmp_path):
    out = tmp_path / "bad.rw"
    proc = run_rewind(["export", "bad", "-o", str(out)], demo_dir, env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1  # off a terminal: the summary line, no progress bars
    assert proc.stderr.startswith("Exported 1 session (1 timeline, ")
    assert "the same objects as a git pack" in proc.stderr
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert run_rewind(["import", str(out)], fresh, env()).returncode == 0
    assert [s["name"] for s in json.loads(run_rewind(["log", "--json"], fresh, env()).stdout)] == ["research-stale"]
    tags = json.loads(run_rewind(["tag", "--json"], fresh, env()).stdout)
    assert [t["name"] for t in tags] == ["bad"]


def test_import_twice_changes_nothing_and_says_so(all_rw, tmp_path):
    assert run_rewind(["import", str(all_rw)], tmp_path, env()).returncode == 0
    before = snapshot(tmp_path / ".rewind")
    again = run_rewind(["import", str(all_rw), "--json"], tmp_path, env())
    assert again.returncode == 0, again.stderr
    assert "Already imported" in again.stderr and "changes nothing" in again.stderr
    data = json.loads(again.stdout)
    assert data["changed"] is False and data["objects_added"] == 0
    assert {r["action"] for r in data["refs"]} == {"unchanged"}
    assert snapshot(tmp_path / ".rewind") == before


def test_dry_run_says_what_would_change_and_changes_nothing(all_rw, tmp_path):
    Repo.init(tmp_path)
    before = snapshot(tmp_path / ".rewind")
    proc = run_rewind(["import", str(all_rw), "--dry-run"], tmp_path, env())
    assert proc.returncode == 0, proc.stderr
    assert "is valid" in proc.stderr and "would add" in proc.stderr
    assert snapshot(tmp_path / ".rewind") == before


def _damaged(data: bytes, how: str) -> bytes:
    m_len = struct.unpack_from(">I", data, 12)[0]
    b = bytearray(data)
    if how == "truncated":
        return data[: len(data) * 2 // 3]
    if how == "payload-byte":
        b[-40] ^= 0x10
    elif how == "header-byte":
        b[64 + m_len // 2] ^= 0x10
    elif how == "magic":
        b[1:4] = b"ZIP"
    elif how == "newer":
        fields = list(rwfile._FIXED.unpack_from(data))
        fields[1] = 2
        head = rwfile._FIXED.pack(*fields) + data[64:64 + m_len]
        return head + hashlib.sha256(head).digest() + data[64 + m_len + 32:]
    elif how == "not-rw":
        return b"<html><body>not an export</body></html>\n"
    elif how == "empty":
        return b""
    return bytes(b)


@pytest.mark.parametrize(("how", "says"), [
    ("truncated", "truncated"),
    ("payload-byte", "payload is corrupt"),
    ("header-byte", "header is corrupt"),
    ("magic", "not a rewind export"),
    ("newer", "written by a newer rewind (format 2); upgrade rewind"),
    ("not-rw", "not a rewind export"),
    ("empty", "empty"),
])
def test_a_damaged_file_is_refused_in_one_line_and_the_repository_is_untouched(all_rw, tmp_path, how, says):
    bad = tmp_path / "bad.rw"
    bad.write_bytes(_damaged(all_rw.read_bytes(), how))
    work = tmp_path / "work"
    repo = Repo.init(work)
    from tests import factories

    factories.write_session(repo, 2, name="mine")
    before = snapshot(repo.path)
    proc = run_rewind(["import", str(bad)], work, env())
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rewind: ") and says in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(repo.path) == before


def test_a_damaged_file_creates_no_repository(all_rw, tmp_path):
    bad = tmp_path / "bad.rw"
    bad.write_bytes(all_rw.read_bytes()[:-1])
    proc = run_rewind(["import", str(bad)], tmp_path, env())
    assert proc.returncode == 1 and "truncated" in proc.stderr
    assert not (tmp_path / ".rewind").exists()


def test_a_conflicting_ref_is_reported_and_left_untouched(all_rw, demo_dir, tmp_path):
    from tests import factories

    repo = Repo.init(tmp_path)
    factories.write_session(repo, 1, name="mine")
    assert run_rewind(["tag", "good", "mine"], tmp_path, env()).returncode == 0
    mine = repo.resolve("mine").commit
    proc = run_rewind(["import", str(all_rw)], tmp_path, env())
    assert proc.returncode == 1
    assert "conflict: refs/tags/good points at" in proc.stderr and "left as it is" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("rewind: 1 ref of")
    assert Repo.open(tmp_path).resolve("good").commit == mine  # untouched
    assert Repo.open(tmp_path).resolve("bad").commit == Repo.open(demo_dir).resolve("bad").commit


def test_export_usage_errors_are_one_line(demo_dir, tmp_path):
    none = run_rewind(["export", "-o", str(tmp_path / "x.rw")], demo_dir, env())
    assert none.returncode == 1 and "nothing to export" in none.stderr
    both = run_rewind(["export", "bad", "--all", "-o", str(tmp_path / "x.rw")], demo_dir, env())
    assert both.returncode == 1 and "not both" in both.stderr
    unknown = run_rewind(["export", "no-such-session", "-o", str(tmp_path / "x.rw")], demo_dir, env())
    assert unknown.returncode == 1 and "unknown ref 'no-such-session'" in unknown.stderr
    assert not (tmp_path / "x.rw").exists()
    missing = run_rewind(["export", "bad"], demo_dir, env())
    assert missing.returncode == 2 and "--output" in missing.stderr


def test_export_json_describes_the_file(demo_dir, tmp_path):
    out = tmp_path / "j.rw"
    proc = run_rewind(["export", "good", "-o", str(out), "--json"], demo_dir, env())
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["file_bytes"] == out.stat().st_size and data["pack_bytes"] > 0
    assert [s["name"] for s in data["sessions"]] == ["research-good"]
    assert "refs/tags/good" in data["refs"]


def test_progress_bars_only_on_a_terminal(monkeypatch):
    from rich.console import Console

    from rewind_vcs.cli import common, transfer

    monkeypatch.setattr(common, "_err_console", Console(file=io.StringIO(), force_terminal=False))
    with transfer._progress() as progress:
        assert progress is None
    screen = io.StringIO()
    monkeypatch.setattr(common, "_err_console", Console(file=screen, force_terminal=True, width=100))
    with transfer._progress() as progress:
        assert progress is not None
        progress(rwfile.Stage.COMPRESS, 5, 10)
        progress(rwfile.Stage.WRITE, 10, 10)
    assert "compressing" in screen.getvalue() and "writing" in screen.getvalue()
