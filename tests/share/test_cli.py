"""``rewind share`` as a user runs it: the real command in a subprocess."""

from __future__ import annotations

import json

import pytest

from tests.share import dom
from tests.share.conftest import MARKER, SECRETS


@pytest.fixture
def share(rewind, shared_repo):
    def run(*args: str, **kw):
        return rewind("share", *args, env={"REWIND_DIR": str(shared_repo.repo.path)}, **kw)

    return run


def test_share_writes_a_content_free_page(share, shared_repo, tmp_path):
    proc = share("good", "-o", "incident.html", check=True)
    out = tmp_path / "incident.html"
    assert proc.stdout == "" and proc.stderr.startswith("wrote incident.html (")
    assert "content-free" in proc.stderr and "4 steps" in proc.stderr
    html = out.read_text(encoding="utf-8")
    payload = json.loads(dom.parse(html).find("script", id="rewind-data").text())
    assert payload["session"]["id"] == shared_repo.good and payload["include_content"] is False
    assert "electric cars" not in html


def test_share_json_summary_and_default_file_name(share, shared_repo, tmp_path):
    proc = share(shared_repo.hostile, "--json", check=True)
    summary = json.loads(proc.stdout)
    assert summary["path"] == f"rewind-{shared_repo.hostile}.html" and summary["steps"] == 4
    assert summary["include_content"] is False and summary["timelines"] == 1
    html = (tmp_path / summary["path"]).read_text(encoding="utf-8")
    assert len(html.encode()) == summary["bytes"] and MARKER not in html


def test_share_include_content_to_stdout(share, shared_repo):
    proc = share(shared_repo.hostile, "--include-content", "-o", "-", check=True)
    assert proc.stdout.startswith("<!DOCTYPE html>") and MARKER in proc.stdout
    for secret in SECRETS:
        assert secret not in proc.stdout


def test_share_include_content_warns(share, shared_repo, tmp_path):
    proc = share(f"{shared_repo.good}/stale-retry", "--include-content", "-o", "x.html", check=True)
    assert "includes prompts and outputs" in proc.stderr and "/stale-retry" in proc.stderr
    assert "electric cars" in (tmp_path / "x.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["no-such-session"], "rewind: unknown ref 'no-such-session'"),
        (["good", "-o", "missing-dir/x.html"], "rewind: cannot write missing-dir/x.html: No such file or directory"),
        (["good", "-o", "."], "rewind: cannot write .: it is a directory"),
        (["good@step-99"], "rewind: step-99 is out of range"),
    ],
)
def test_share_errors_are_one_clean_line(share, args, expected, tmp_path):
    proc = share(*args)
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.html"))
