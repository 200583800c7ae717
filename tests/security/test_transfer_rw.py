"""Crafted ``.rw`` files: bombs, bad signatures, hostile names and sessions (issue K, "bounded work" and
"import verifies"). Each must end in one line, the good sessions arriving, ``git fsck`` clean."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pygit2
import pytest

from rewind_vcs.errors import FormatError, RewindError
from rewind_vcs.store.arrivals import Origin, read_arrivals
from rewind_vcs.store.repo import Repo
from rewind_vcs.transfer.rwexport import export_rw
from rewind_vcs.transfer.rwformat import FIXED, HEADER_SIZE, MAGIC, assemble
from rewind_vcs.transfer.rwimport import import_rw
from rewind_vcs.transfer.rwread import MIN_CAP
from tests import factories
from tests.conftest import git_fsck
from tests.e2e.conftest import offline_env, run_rewind
from tests.security import transfer_craft as craft


@pytest.fixture
def source(tmp_path) -> tuple[Repo, str]:
    repo = Repo.init(tmp_path / "src")
    return repo, factories.write_session(repo, 2, name="good")


@pytest.fixture
def target(tmp_path) -> Repo:
    return Repo.init(tmp_path / "dst")


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "\x1b" not in text
    return text


def _good_manifest(source: tuple[Repo, str], tmp_path: Path) -> bytes:
    repo, _ = source
    path = tmp_path / "good.rw"
    export_rw(repo, all_refs=True, output=path)
    data = path.read_bytes()
    m_len = struct.unpack_from(">I", data, 12)[0]
    return data[HEADER_SIZE:HEADER_SIZE + m_len]


def _with_payload(manifest: bytes, payload: bytes, declared: int) -> bytes:
    fixed = FIXED.pack(MAGIC, 1, 0, len(manifest), len(payload), declared, hashlib.sha256(payload).digest())
    head = fixed + manifest
    return head + hashlib.sha256(head).digest() + payload


def _import_in_child(path: Path, repo: Repo) -> tuple[str, int, float]:
    """Import in a fresh process; returns (its error line, its peak RSS in MiB, seconds)."""
    code = (
        "import resource, sys\n"
        "from rewind_vcs.store.repo import Repo\n"
        "from rewind_vcs.transfer.rwimport import import_rw\n"
        "from rewind_vcs.errors import RewindError\n"
        "try:\n"
        f"    import_rw(Repo.open({str(repo.path)!r}), {str(path)!r}); msg = 'imported'\n"
        "except RewindError as exc:\n"
        "    msg = str(exc)\n"
        "print(msg); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)\n"
    )
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    msg, rss = proc.stdout.strip().splitlines()
    return msg, int(rss), time.monotonic() - start


def _baseline_rss(tmp_path: Path, target: Repo) -> int:
    """The peak RSS of the same child refusing a file at its first byte (interpreter and libraries)."""
    path = tmp_path / "tiny.rw"
    path.write_bytes(b"not a .rw file")
    return _import_in_child(path, target)[1]


# -- bounded work ------------------------------------------------------------------------------


def test_a_32_kb_file_claiming_a_1_gb_pack_is_refused_without_the_memory(source, target, tmp_path):
    payload = craft.zstd_of_zeros(1 << 30, b"PACK\0\0\0\2\0\0\0\1")
    assert len(payload) < 64 << 10
    path = tmp_path / "bomb.rw"
    path.write_bytes(_with_payload(_good_manifest(source, tmp_path), payload, 1 << 30))
    msg, rss, seconds = _import_in_child(path, target)
    assert "claims a 1,073,741,824-byte pack" in msg and "nothing was imported" in msg
    assert rss < _baseline_rss(tmp_path, target) + 40 and seconds < 30, (rss, seconds)  # 1 GB before the fix


def test_a_bomb_under_the_cap_stops_at_the_pack_signature(source, target, tmp_path):
    payload = craft.zstd_of_zeros(MIN_CAP - 1024)  # zeros: no PACK signature
    path = tmp_path / "zeros.rw"
    path.write_bytes(_with_payload(_good_manifest(source, tmp_path), payload, MIN_CAP - 1024))
    msg, rss, _ = _import_in_child(path, target)
    assert "not a git pack" in msg
    assert rss < _baseline_rss(tmp_path, target) + 40, rss  # not the 64 MiB the frame decompresses to


def test_a_1_tib_frame_header_is_one_line_not_memory_error(source, target, tmp_path):
    manifest = _good_manifest(source, tmp_path)
    for declared in (1 << 40, 1000):  # the header agreeing with the frame, or not
        path = tmp_path / "tib.rw"
        path.write_bytes(_with_payload(manifest, craft.zstd_frame_claiming(1 << 40), declared))
        with pytest.raises(FormatError) as info:
            import_rw(target, path)
        assert "claims a" in _one_line(info.value) or "does not match the header" in str(info.value)


def test_a_damaged_signature_and_a_newer_format_are_refused_first(source, target, tmp_path):
    repo, _ = source
    path = tmp_path / "a.rw"
    export_rw(repo, all_refs=True, output=path)
    data = path.read_bytes()
    for bad, expected in ((b"\x89RWD\n\x1a\n" + data[8:], "signature is damaged"),
                          (b"PK\x03\x04" + data[4:], "not a rewind export"),
                          (data[:8] + b"\x00\x02" + data[10:], "newer rewind (format 2)")):
        path.write_bytes(bad)
        with pytest.raises(FormatError) as info:
            import_rw(target, path)
        assert expected in _one_line(info.value)
        if "newer" in expected:
            assert "upgrade rewind" in str(info.value)
    assert target.session_ids() == []


def test_importing_a_directory_or_a_device_is_one_line(target, tmp_path):
    for path in (tmp_path, Path("/dev/zero")):
        with pytest.raises(RewindError) as info:
            import_rw(target, path)
        assert "directory" in _one_line(info.value) or "not a regular file" in str(info.value)


def test_export_to_a_directory_is_one_line(source, tmp_path):
    repo, _ = source
    for output in ("/", str(tmp_path), str(tmp_path / "missing" / "x.rw")):
        with pytest.raises(RewindError) as info:
            export_rw(repo, all_refs=True, output=output)
        assert _one_line(info.value)
    env = {**offline_env(), "REWIND_DIR": str(repo.path)}
    proc = run_rewind(["export", "--all", "-o", "/"], cwd=tmp_path, env=env)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "is a directory" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- hostile contents: skipped with one warning, the rest arrives ----------------------------------------


def _hostile_file(source: tuple[Repo, str]) -> tuple[bytes, str, dict[str, str]]:
    repo, good = source
    git = repo.git
    code_sid = craft.code_commit_session(repo)
    newer_sid = craft.newer_format_session(repo)
    tip = str(git.references[f"refs/sessions/{good}/main"].target)
    refs = {**craft.session_refs(repo, good), **craft.session_refs(repo, code_sid),
            **craft.session_refs(repo, newer_sid),
            "refs/tags/HEAD": tip, "refs/tags/step-3": tip, "refs/tags/latest": tip, craft.ESC_TAG: tip,
            craft.BIDI_TAG: tip, "refs/tags/fine": tip}
    return craft.rw_file(repo, refs, [good]), good, {"code": code_sid, "newer": newer_sid}


def test_hostile_sessions_and_tags_are_skipped_and_the_good_session_arrives(source, target, tmp_path):
    data, good, bad = _hostile_file(source)
    path = tmp_path / "incident.rw"
    path.write_bytes(data)
    result = import_rw(target, path)
    assert target.session_ids() == [good]
    assert {r.name for r in result.created} == {f"refs/sessions/{good}/main", "refs/tags/fine"}
    lines = [s.line() for s in result.skipped]
    assert len(lines) == 7, lines  # one per bad session, one per bad tag
    assert any(bad["code"] in line and "does not read as rewind records" in line for line in lines)
    assert any(bad["newer"] in line and "newer rewind" in line and "upgrade" in line for line in lines)
    for name in ("HEAD", "step-3", "latest"):
        assert any(f"refs/tags/{name}:" in line for line in lines)
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert any("\\x1b" in line for line in lines) and any("\\u202e" in line for line in lines)
    assert not any(r.name.startswith("refs/tags/") and r.name != "refs/tags/fine"
                   for r in target.git.references.iterator())
    assert read_arrivals(target.path)[good].origin is Origin.IMPORTED
    assert read_arrivals(target.path)[good].source == "incident.rw"
    assert git_fsck(target.path).returncode == 0
    target.sessions()  # every command still lists


def test_the_cli_warns_once_per_skip_and_exits_1(source, target, tmp_path):
    data, good, _ = _hostile_file(source)
    path = tmp_path / "incident.rw"
    path.write_bytes(data)
    env = {**offline_env(), "REWIND_DIR": str(target.path)}
    proc = run_rewind(["import", str(path)], cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    assert len(warnings) == 7 and "\x1b" not in proc.stderr and "\u202e" not in proc.stderr
    assert "Traceback" not in proc.stderr
    listed = run_rewind(["log", "--json"], cwd=tmp_path, env=env)
    assert [row["id"] for row in json.loads(listed.stdout)] == [good]


def test_a_file_of_only_hostile_sessions_is_refused_whole(source, target, tmp_path):
    repo, _ = source
    code_sid = craft.code_commit_session(repo)
    data = craft.rw_file(repo, craft.session_refs(repo, code_sid), [])
    with pytest.raises(FormatError) as info:
        import_rw(target, data)
    assert "nothing in the file can be imported" in _one_line(info.value)
    assert target.session_ids() == [] and not list((target.path / "objects" / "pack").glob("*.pack"))


def test_an_imported_tag_never_replaces_a_local_one(source, target, tmp_path):
    repo, good = source
    mine = factories.write_session(target, 1, name="mine")
    target.git.references.create("refs/tags/fine", pygit2.Oid(hex=str(target.git.references[
        f"refs/sessions/{mine}/main"].target)))
    tip = str(repo.git.references[f"refs/sessions/{good}/main"].target)
    data = craft.rw_file(repo, {**craft.session_refs(repo, good), "refs/tags/fine": tip}, [good])
    result = import_rw(target, data)
    assert [c.name for c in result.conflicts] == ["refs/tags/fine"]
    assert target.resolve("fine").session_id == mine


def test_a_colliding_session_id_is_refused_not_mixed(source, target, tmp_path):
    repo, good = source
    mine = factories.write_session(target, 1, name="mine")
    # this repository has a session under the incoming id whose history is another one
    target.git.references.create(f"refs/sessions/{good}/main",
                                 target.git.references[f"refs/sessions/{mine}/main"].target)
    tip = str(repo.git.references[f"refs/sessions/{good}/main"].target)
    fork_ref = f"refs/sessions/{good}/other"
    repo.git.references.create(fork_ref, pygit2.Oid(hex=tip))
    data = craft.rw_file(repo, {**craft.session_refs(repo, good), "refs/tags/into-it": tip}, [good])
    result = import_rw(target, data)
    lines = [s.line() for s in result.skipped]
    assert any("a different session with id" in line for line in lines), lines
    assert any("refs/tags/into-it" in line for line in lines)
    assert target.git.references.get(fork_ref) is None and target.git.references.get("refs/tags/into-it") is None
    assert git_fsck(target.path).returncode == 0


def test_push_and_export_carry_notes(source, tmp_path):
    repo, good = source
    sig = repo.signature()
    repo.git.create_note('{"score": 1}', sig, sig, str(repo.git.references[f"refs/sessions/{good}/main"].target),
                         "refs/notes/evals")
    path = tmp_path / "all.rw"
    export_rw(repo, all_refs=True, output=path)
    fresh = Repo.init(tmp_path / "fresh")
    import_rw(fresh, path)
    assert fresh.git.references.get("refs/notes/evals") is not None
    bare = tmp_path / "team.git"
    pygit2.init_repository(str(bare), bare=True)
    from rewind_vcs.transfer.push import push

    push(repo, str(bare)).check()
    assert pygit2.Repository(str(bare)).references.get("refs/notes/evals") is not None


def test_a_mangled_manifest_name_is_shown_escaped(target):
    manifest = {"format": 1, "rewind_version": "x", "created_at": 1.0, "sessions": [],
                "refs": {"refs/tags/\x1b]8;;http://evil\x07x": "z" * 40},
                "counts": {"sessions": 0, "timelines": 0, "steps": 0, "refs": 1, "objects": 0}}
    with pytest.raises(FormatError) as info:
        import_rw(target, assemble(orjson.dumps(manifest), b"", 0))
    assert "\x1b" not in _one_line(info.value) and "\x07" not in str(info.value)
    assert target.session_ids() == []
