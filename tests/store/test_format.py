"""Format versions: every record has one; older ones migrate, newer ones are refused."""

from __future__ import annotations

import orjson
import pytest

from rewind_vcs.errors import FormatError, FormatTooNewError
from rewind_vcs.store import format as fmt
from rewind_vcs.store.records import FORMAT_VERSION
from tests import factories


def test_every_stored_record_carries_the_format(repo):
    factories.write_session(repo, 1)
    step = repo.timeline("latest").steps[0]
    tree = repo.git[step.commit_id].tree
    for path in ("step.json", "session.json", "request/meta.json", "response/meta.json"):
        assert orjson.loads(tree[path].data)["format"] == FORMAT_VERSION
    end_tree = repo.git[repo.timeline("latest").tip].tree
    assert orjson.loads(end_tree["end.json"].data)["format"] == FORMAT_VERSION


def test_newer_format_is_refused_with_upgrade_hint():
    data = orjson.dumps({"format": FORMAT_VERSION + 1, "n": 1})
    with pytest.raises(FormatTooNewError, match="upgrade rewind"):
        fmt.loads(data, "step")


def test_older_format_is_migrated_step_by_step(monkeypatch):
    monkeypatch.setattr(fmt, "FORMAT_VERSION", 3)
    monkeypatch.setitem(fmt.MIGRATIONS, "step", {
        1: lambda r: {**{k: v for k, v in r.items() if k != "latency"}, "latency_ms": r["latency"] * 1000},
        2: lambda r: {**r, "summary": r.get("summary", "").strip()},
    })
    rec = fmt.loads(orjson.dumps({"format": 1, "n": 4, "latency": 0.5, "summary": " hi "}), "step")
    assert rec == {"format": 3, "n": 4, "latency_ms": 500.0, "summary": "hi"}


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'{"n": 1}', b'{"format": "x"}'])
def test_corrupt_records_are_format_errors(data):
    with pytest.raises(FormatError):
        fmt.loads(data, "step")


def test_a_newer_step_in_the_repo_is_refused_on_read(repo):
    import pygit2

    from rewind_vcs.store.session import Step

    factories.write_session(repo, 1)
    step = repo.timeline("latest").steps[0]
    git = repo.git
    commit = git[step.commit_id]
    tb = git.TreeBuilder(commit.tree)
    tb.insert("step.json", git.create_blob(orjson.dumps({"format": 99, "n": 1})), pygit2.enums.FileMode.BLOB)
    sig = repo.signature()
    new = git.create_commit(None, sig, sig, commit.message, tb.write(), list(commit.parent_ids))
    with pytest.raises(FormatTooNewError, match="format 99.*upgrade rewind"):
        Step(repo, str(new)).info  # noqa: B018
