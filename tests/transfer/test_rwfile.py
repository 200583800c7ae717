"""The .rw file: export, verify, import, and every way a file can be damaged."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import orjson
import pygit2
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewind_vcs.demo.run import run_demo
from rewind_vcs.errors import FormatError, RefError, RewindError
from rewind_vcs.store.records import EndInfo
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from rewind_vcs.transfer import packfile
from tests import factories
from tests.store.test_pack import growing_session
from tests.transfer import rw as rwfile

GIT = shutil.which("git")
needs_git = pytest.mark.skipif(GIT is None, reason="the git command is not installed")


# -- helpers -------------------------------------------------------------------------


def snapshot(repo: Repo) -> dict[str, str]:
    """Every file and directory under .rewind with a hash of its bytes."""
    out = {}
    for root, dirs, files in os.walk(repo.path):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), repo.path) + "/"] = "dir"
        for f in files:
            p = os.path.join(root, f)
            out[os.path.relpath(p, repo.path)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


def tree_files(git: pygit2.Repository, tree, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for entry in tree:
        obj = git[entry.id]
        if isinstance(obj, pygit2.Tree):
            out.update(tree_files(git, obj, f"{prefix}{entry.name}/"))
        else:
            out[prefix + entry.name] = obj.data
    return out


def session_refs(repo: Repo) -> dict[str, str]:
    return {r.name: str(r.target) for r in repo.git.references.iterator() if r.name.startswith("refs/")}


def craft(pack: bytes, manifest: dict) -> bytes:
    """A .rw file with valid checksums around any pack and manifest (what a buggy writer could make)."""
    payload = zstandard.ZstdCompressor().compress(pack)
    return rwfile._assemble(orjson.dumps(manifest), payload, len(pack))


def reheader(data: bytes, **fields) -> bytes:
    """Rewrite fixed header fields of a .rw file and recompute the header checksum."""
    magic, version, flags, m_len, p_len, r_len, p_sha = rwfile._FIXED.unpack_from(data)
    values = dict(magic=magic, version=version, flags=flags, m_len=m_len, p_len=p_len, r_len=r_len, p_sha=p_sha)
    values.update(fields)
    fixed = rwfile._FIXED.pack(*values.values())
    head = fixed + data[rwfile.HEADER_SIZE:rwfile.HEADER_SIZE + m_len]
    return head + hashlib.sha256(head).digest() + data[rwfile.HEADER_SIZE + m_len + 32:]


def refused(data: bytes, tmp_path: Path, target: Repo) -> str:
    """Import ``data`` into ``target``; it must be refused with one line and change nothing."""
    path = tmp_path / "input.rw"
    path.write_bytes(data)
    before = snapshot(target)
    with pytest.raises(FormatError) as info:
        rwfile.import_rw(target, path)
    assert snapshot(target) == before
    message = str(info.value)
    assert "\n" not in message and message
    return message


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory) -> Repo:
    """The demo's two recorded sessions (tags good and bad) and its replay."""
    repo = Repo.init(tmp_path_factory.mktemp("demo"))
    run_demo(repo, python=sys.executable, env=os.environ)
    return repo


@pytest.fixture(scope="module")
def demo_rw(demo_repo, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("export") / "all.rw"
    rwfile.export_rw(demo_repo, all_refs=True, output=path)
    return path.read_bytes()


@pytest.fixture
def target(tmp_path) -> Repo:
    """A repository that already holds a session of its own."""
    repo = Repo.init(tmp_path / "target")
    factories.write_session(repo, 2, name="local")
    return repo


# -- round trip ------------------------------------------------------------------------------


def test_export_import_gives_byte_identical_steps(demo_repo, demo_rw, tmp_path, fsck):
    fresh = Repo.init(tmp_path / "fresh")
    result = rwfile.import_rw(fresh, demo_rw)
    assert result.changed and not result.conflicts
    assert session_refs(fresh) == {n: o for n, o in session_refs(demo_repo).items()
                                   if n.startswith(rwfile.EXPORTED_PREFIXES)}
    compared = 0
    for sid in demo_repo.session_ids():
        src, dst = demo_repo.session(sid), fresh.session(sid)
        assert dst.info == src.info
        for timeline in src.timelines():
            copy = dst.timeline(timeline.name)
            assert copy.commits == timeline.commits
            for a, b in zip(timeline.steps, copy.steps, strict=True):
                assert b.request.body == a.request.body and b.response.body == a.response.body
                assert b.request == a.request and b.response == a.response and b.info == a.info
                compared += 1
            for cid in timeline.commits:  # step.json, request/, response/, end.json, stdout: every byte
                assert (tree_files(fresh.git, fresh.git[cid].tree)
                        == tree_files(demo_repo.git, demo_repo.git[cid].tree))
            assert copy.end == timeline.end
    assert compared == sum(s.steps for s in demo_repo.sessions(use_cache=False)) > 0
    assert [s.to_json() for s in fresh.sessions(use_cache=False)] == \
        [s.to_json() for s in demo_repo.sessions(use_cache=False)]
    fsck(fresh)


def test_import_is_idempotent_and_says_so(demo_rw, target):
    first = rwfile.import_rw(target, demo_rw)
    assert first.changed and first.objects_added > 0 and len(first.created) == len(first.refs)
    before = snapshot(target)
    second = rwfile.import_rw(target, demo_rw)
    assert not second.changed and second.objects_added == 0
    assert {r.action for r in second.refs} == {rwfile.RefAction.UNCHANGED}
    assert snapshot(target) == before


def test_an_existing_ref_with_another_target_is_a_conflict_left_untouched(demo_repo, demo_rw, target):
    local_tip = target.resolve("local").commit
    target.git.references.create("refs/tags/good", pygit2.Oid(hex=local_tip))
    result = rwfile.import_rw(target, demo_rw)
    [conflict] = result.conflicts
    assert conflict.name == "refs/tags/good" and conflict.existing == local_tip
    assert "refs/tags/good points at" in conflict.reason
    assert str(target.git.references["refs/tags/good"].target) == local_tip  # untouched
    assert str(target.git.references["refs/tags/bad"].target) == demo_repo.resolve("bad").commit  # the rest came in
    assert len(target.session_ids()) == 3


def test_dry_run_verifies_and_changes_nothing(demo_rw, target):
    before = snapshot(target)
    result = rwfile.import_rw(target, demo_rw, dry_run=True)
    assert result.dry_run and result.changed and result.objects_added > 0
    assert snapshot(target) == before


def test_the_imported_pack_is_a_real_git_pack(demo_rw, target, fsck):
    rwfile.import_rw(target, demo_rw)
    packs = sorted((target.path / "objects" / "pack").glob("pack-*.pack"))
    assert packs
    if GIT:
        for p in packs:
            r = subprocess.run([GIT, "verify-pack", str(p.with_suffix(".idx"))], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
    fsck(target)


# -- what an export holds ------------------------------------------------------------------------


@pytest.fixture
def forked(repo):
    """alpha with a fork timeline, a tag on the fork, a baseline; beta with its own tag; a note."""
    alpha = factories.write_session(repo, 3, name="alpha")
    beta = factories.write_session(repo, 2, name="beta")
    w = SessionWriter.fork(repo, alpha, repo.step("alpha@step-2").commit_id, "try")
    w.append(factories.exchange("another way"), factories.info())
    w.finish(EndInfo(exit_code=0))
    git = repo.git
    git.references.create("refs/tags/on-fork", pygit2.Oid(hex=repo.resolve(f"{alpha}/try").commit))
    git.references.create("refs/tags/b", pygit2.Oid(hex=repo.resolve("beta").commit))
    git.references.create("refs/baselines/base", pygit2.Oid(hex=repo.resolve("alpha").commit))
    sig = repo.signature()
    git.create_note("score: 0.9", sig, sig, repo.resolve("beta").commit, "refs/notes/evals")
    return repo, alpha, beta


@pytest.mark.parametrize("spec", ["alpha", "alpha@step-1", "on-fork"])
def test_export_by_ref_carries_the_whole_session_and_the_tags_into_it(forked, tmp_path, spec):
    repo, alpha, beta = forked
    result = rwfile.export_rw(repo, [spec], output=tmp_path / "a.rw")
    assert set(result.manifest.refs) == {f"refs/sessions/{alpha}/main", f"refs/sessions/{alpha}/try",
                                         "refs/tags/on-fork", "refs/baselines/base"}
    [entry] = result.manifest.sessions
    assert entry.id == alpha and entry.name == "alpha" and entry.timelines == ["main", "try"] and entry.steps == 3
    fresh = Repo.init(tmp_path / "fresh")
    rwfile.import_rw(fresh, tmp_path / "a.rw")
    assert fresh.session_ids() == [alpha]
    assert len(fresh.timeline(f"{alpha}/try").steps) == 3
    assert fresh.resolve("on-fork").timeline == "try"
    # exactly the reachable objects: nothing of beta travelled
    beta_tree = str(repo.git[repo.resolve("beta").commit].tree_id)
    assert not fresh.git.odb.exists(pygit2.Oid(hex=beta_tree))


def test_export_all_carries_every_ref_including_notes(forked, tmp_path, fsck):
    repo, alpha, beta = forked
    result = rwfile.export_rw(repo, all_refs=True, output=tmp_path / "all.rw")
    assert result.manifest.counts.sessions == 2 and result.manifest.counts.timelines == 3
    assert "refs/notes/evals" in result.manifest.refs and "refs/tags/b" in result.manifest.refs
    fresh = Repo.init(tmp_path / "fresh")
    rwfile.import_rw(fresh, tmp_path / "all.rw")
    assert fresh.git.lookup_note(repo.resolve("beta").commit, "refs/notes/evals").message == "score: 0.9"
    fsck(fresh)


def test_export_refuses_nothing_and_unknown_refs(repo, tmp_path):
    with pytest.raises(RewindError, match="nothing to export"):
        rwfile.export_rw(repo, all_refs=True, output=tmp_path / "x.rw")
    factories.write_session(repo, 1, name="one")
    with pytest.raises(RefError):
        rwfile.export_rw(repo, ["nope"], output=tmp_path / "x.rw")
    with pytest.raises(RewindError, match="cannot write"):
        rwfile.export_rw(repo, ["one"], output=tmp_path / "no-such-dir" / "x.rw")
    assert not (tmp_path / "x.rw").exists()


def test_manifest_round_trips_and_the_header_is_readable_alone(demo_rw):
    manifest, start, p_len, r_len = rwfile.read_header(demo_rw)
    assert start + p_len == len(demo_rw) and r_len > p_len
    assert rwfile.Manifest.from_json(orjson.loads(manifest.dumps())) == manifest
    assert {s.name for s in manifest.sessions} == {"research-good", "research-stale"}
    assert manifest.counts.steps == sum(s.steps for s in manifest.sessions) > 0
    assert manifest.rewind_version and manifest.created_at > 0
    assert demo_rw[:8] == rwfile.MAGIC and struct.unpack(">H", demo_rw[8:10]) == (rwfile.RW_FORMAT,)


def test_a_file_never_carries_the_ca_config_or_journal(demo_repo, demo_rw):
    pack = rwfile.read_rw(demo_rw).pack
    blobs = b"".join(zlib.decompress(pack.data[e.data_start:e.end]) for e in pack.entries)
    assert b"BEGIN CERTIFICATE" not in blobs and b"PRIVATE KEY" not in blobs
    assert b"[rewind]" not in blobs
    assert all(n.startswith(rwfile.EXPORTED_PREFIXES) for n in rwfile.read_header(demo_rw)[0].refs)


# -- size ---------------------------------------------------------------------------------------------


def test_a_200_step_growing_session_exports_within_1_1x_its_pack(repo, tmp_path):
    growing_session(repo, 200)
    packed = sum(p.stat().st_size for p in (repo.path / "objects" / "pack").glob("*.pack"))
    result = rwfile.export_rw(repo, ["growing"], output=tmp_path / "g.rw")
    size = (tmp_path / "g.rw").stat().st_size
    print(f"\n200-step growing session: pack {packed:,} B, .rw {size:,} B ({size / packed:.2f}x the pack; "
          f"the same objects as one export pack: {result.pack_bytes:,} B)")
    assert size == result.file_bytes
    assert size <= 1.1 * packed
    assert size <= 1.1 * result.pack_bytes
    fresh = Repo.init(tmp_path / "fresh")
    rwfile.import_rw(fresh, tmp_path / "g.rw")
    assert len(fresh.timeline("growing").steps) == 200


# -- damaged files: refused with one line, the repository exactly as it was ----------------------------


@pytest.mark.parametrize("keep", [1, 5, 40, 63, 64, 100, "head", "mid-payload", "last-byte"])
def test_a_truncated_file_is_refused(demo_rw, tmp_path, target, keep):
    manifest_len = struct.unpack_from(">I", demo_rw, 12)[0]
    n = {"head": 64 + manifest_len + 10, "mid-payload": len(demo_rw) // 2 + 64 + manifest_len // 2,
         "last-byte": len(demo_rw) - 1}.get(keep, keep)
    message = refused(demo_rw[:n], tmp_path, target)
    assert "truncated" in message


@pytest.mark.parametrize("where", ["payload-start", "payload-middle", "payload-end"])
def test_a_flipped_byte_in_the_payload_is_refused(demo_rw, tmp_path, target, where):
    start = rwfile.read_header(demo_rw)[1]
    i = {"payload-start": start, "payload-middle": (start + len(demo_rw)) // 2, "payload-end": len(demo_rw) - 1}[where]
    data = bytearray(demo_rw)
    data[i] ^= 0x04
    assert "payload is corrupt" in refused(bytes(data), tmp_path, target)


@pytest.mark.parametrize("offset", [10, 13, 17, 25, 40, 70, "manifest-middle", "header-digest"])
def test_a_flipped_byte_in_the_header_is_refused(demo_rw, tmp_path, target, offset):
    manifest_len = struct.unpack_from(">I", demo_rw, 12)[0]
    i = {"manifest-middle": 64 + manifest_len // 2, "header-digest": 64 + manifest_len + 3}.get(offset, offset)
    data = bytearray(demo_rw)
    data[i] ^= 0x01
    message = refused(bytes(data), tmp_path, target)
    assert "header is corrupt" in message or "truncated" in message


def test_wrong_magic_is_refused(demo_rw, tmp_path, target):
    assert "not a rewind export" in refused(b"PK\x03\x04" + demo_rw[4:], tmp_path, target)
    text_mode = demo_rw.replace(b"\r\n", b"\n", 1)  # what a text-mode transfer does to the signature
    assert "signature is damaged" in refused(text_mode, tmp_path, target)


def test_a_newer_version_is_refused_with_upgrade_advice(demo_rw, tmp_path, target):
    message = refused(reheader(demo_rw, version=2), tmp_path, target)
    assert "written by a newer rewind (format 2); upgrade rewind" in message
    manifest = orjson.loads(demo_rw[64:64 + struct.unpack_from(">I", demo_rw, 12)[0]])
    manifest["format"] = 7
    pack = rwfile.read_rw(demo_rw).pack.data
    assert "written by a newer rewind (format 7); upgrade rewind" in refused(craft(pack, manifest), tmp_path, target)


@pytest.mark.parametrize("content", [
    b"hello, this is a plain text file\n",
    b"\x89PNG\r\n\x1a\n" + bytes(200),
    b"# v2 git bundle\n" + b"0" * 40 + b" refs/heads/main\n\nPACK",
    bytes(range(256)) * 10,
])
def test_a_file_that_is_not_rw_at_all_is_refused(content, tmp_path, target):
    assert "not a rewind export" in refused(content, tmp_path, target)


def test_an_empty_file_is_refused(tmp_path, target):
    assert "empty" in refused(b"", tmp_path, target)


def test_trailing_bytes_and_unknown_flags_are_refused(demo_rw, tmp_path, target):
    assert "unexpected bytes" in refused(demo_rw + b"\n", tmp_path, target)
    assert "flags" in refused(reheader(demo_rw, flags=1), tmp_path, target)


def test_a_payload_that_does_not_decompress_is_refused(demo_rw, tmp_path, target):
    manifest = orjson.loads(demo_rw[64:64 + struct.unpack_from(">I", demo_rw, 12)[0]])
    payload = b"not zstd at all"
    head = rwfile._FIXED.pack(rwfile.MAGIC, 1, 0, len(orjson.dumps(manifest)), len(payload), 100,
                              hashlib.sha256(payload).digest()) + orjson.dumps(manifest)
    data = head + hashlib.sha256(head).digest() + payload
    assert "does not decompress" in refused(data, tmp_path, target)


def test_a_missing_file_is_one_line(tmp_path, target):
    with pytest.raises(RewindError, match="no such file"):
        rwfile.import_rw(target, tmp_path / "absent.rw")


# -- checksums fine, contents wrong: the verification in a scratch repository ----------------------------


def _manifest(demo_rw) -> dict:
    return orjson.loads(demo_rw[64:64 + struct.unpack_from(">I", demo_rw, 12)[0]])


def test_a_ref_whose_history_is_not_in_the_file_is_refused(demo_rw, tmp_path, target):
    manifest = _manifest(demo_rw)
    manifest["refs"]["refs/tags/ghost"] = "ab" * 20
    manifest["counts"]["refs"] += 1
    pack = rwfile.read_rw(demo_rw).pack.data
    assert "does not hold" in refused(craft(pack, manifest), tmp_path, target)


def test_objects_that_no_ref_reaches_are_refused(demo_rw, tmp_path, target):
    manifest = _manifest(demo_rw)
    keep = next(iter(manifest["sessions"]))
    manifest["refs"] = {n: o for n, o in manifest["refs"].items() if n.startswith(f"refs/sessions/{keep['id']}/")}
    manifest["sessions"] = [keep]
    pack = rwfile.read_rw(demo_rw).pack.data
    assert "no ref in the file reaches" in refused(craft(pack, manifest), tmp_path, target)


def test_counts_that_do_not_match_are_refused(demo_rw, tmp_path, target):
    manifest = _manifest(demo_rw)
    manifest["sessions"][0]["steps"] += 1
    manifest["counts"]["steps"] += 1
    pack = rwfile.read_rw(demo_rw).pack.data
    assert "steps" in refused(craft(pack, manifest), tmp_path, target)


def _one_commit_file(tmp_path, files: dict[str, bytes], message: str) -> bytes:
    src = Repo.init(tmp_path / "src")
    git = src.git
    tb = git.TreeBuilder()
    for name, data in files.items():
        tb.insert(name, git.create_blob(data), pygit2.enums.FileMode.BLOB)
    sig = src.signature(0)
    oid = str(git.create_commit(None, sig, sig, message, tb.write(), []))
    sid = oid[:12]
    refs = {f"refs/sessions/{sid}/main": oid}
    pack = rwfile.build_pack(src, refs, tmp_path).read_bytes()
    n = len(packfile.parse_pack(pack).entries)
    return craft(pack, {"format": 1, "rewind_version": "0", "created_at": 0, "refs": refs,
                        "sessions": [{"id": sid, "name": None, "timelines": ["main"], "steps": 0}],
                        "counts": {"sessions": 1, "timelines": 1, "steps": 0, "refs": 1, "objects": n}})


def test_a_session_that_is_not_rewind_records_is_refused(tmp_path, target):
    data = _one_commit_file(tmp_path, {"README": b"just a git commit\n"}, "initial commit\n")
    assert "session" in refused(data, tmp_path, target)


def test_records_of_a_newer_rewind_inside_are_refused_with_upgrade_advice(tmp_path, target):
    record = orjson.dumps({"format": 99, "command": ["x"], "cwd": "/", "started_at": 0})
    data = _one_commit_file(tmp_path, {"session.json": record}, "session: x\n\nRewind-Kind: session\n")
    message = refused(data, tmp_path, target)
    assert "newer rewind" in message and "upgrade rewind" in message


# -- the pack reader and index writer against git itself ------------------------------------------------


@needs_git
def test_pack_reader_and_index_writer_match_git(demo_repo, tmp_path):
    """git pack-objects writes offset deltas (libgit2 writes ref deltas): both must read back,
    and our .idx must be byte for byte what ``git index-pack`` writes."""
    revs = "\n".join(o for o in session_refs(demo_repo).values()) + "\n"
    proc = subprocess.run([GIT, "--git-dir", str(demo_repo.path), "pack-objects", "--revs", "--stdout",
                           "--delta-base-offset"],
                          input=revs.encode(), capture_output=True, check=True)
    git_pack = proc.stdout
    pack = packfile.parse_pack(git_pack)
    assert any(e.kind == packfile.OFS_DELTA for e in pack.entries)
    (tmp_path / "p.pack").write_bytes(git_pack)
    subprocess.run([GIT, "index-pack", "-o", str(tmp_path / "p.idx"), str(tmp_path / "p.pack")],
                   capture_output=True, check=True)
    assert packfile.pack_index(pack) == (tmp_path / "p.idx").read_bytes()
    verbose = subprocess.run([GIT, "verify-pack", "-v", str(tmp_path / "p.idx")], capture_output=True,
                             text=True, check=True).stdout
    git_oids = {line.split()[0] for line in verbose.splitlines()
                if len(line.split()) >= 5 and len(line.split()[0]) == 40}
    assert pack.oids == git_oids
    for level in (0, 9):  # re-encoding keeps every object and delta, with offsets recomputed
        again = packfile.reencode_pack(pack, level)
        assert packfile.parse_pack(again.data).oids == git_oids
        (tmp_path / f"r{level}.pack").write_bytes(again.data)
        (tmp_path / f"r{level}.idx").write_bytes(packfile.pack_index(again))
        subprocess.run([GIT, "verify-pack", str(tmp_path / f"r{level}.idx")], capture_output=True, check=True)


# -- properties of the reader ---------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(st.binary(max_size=400))
def test_any_bytes_are_read_or_refused_with_a_format_error(data):
    with pytest.raises(FormatError):
        rwfile.read_rw(data)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_after_a_valid_signature_are_refused_with_a_format_error(tail):
    with pytest.raises(FormatError):
        rwfile.read_rw(rwfile.MAGIC + b"\x00\x01" + tail)


@PROPERTY
@given(position=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_every_single_byte_change_is_caught(demo_rw, position, mask):
    i = int(position * len(demo_rw))
    data = bytearray(demo_rw)
    data[i] ^= mask
    with pytest.raises(FormatError):
        rwfile.read_rw(bytes(data))


@PROPERTY
@given(st.floats(0, 1, exclude_max=True))
def test_every_truncation_is_caught(demo_rw, fraction):
    with pytest.raises(FormatError):
        rwfile.read_rw(demo_rw[: int(fraction * len(demo_rw))])


@PROPERTY
@given(position=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_the_pack_reader_refuses_any_damaged_pack(demo_rw, position, mask):
    pack = bytearray(rwfile.read_rw(demo_rw).pack.data)
    pack[int(position * len(pack))] ^= mask
    with pytest.raises(FormatError):
        packfile.parse_pack(bytes(pack))


def _rebuild(pack: packfile.Pack, index: int, content: bytes) -> bytes:
    """The same pack with entry ``index``'s inflated content replaced, zlib and checksum valid."""
    out = bytearray(pack.data[:12])
    buf = memoryview(pack.data)
    for i, e in enumerate(pack.entries):
        raw = zlib.decompress(buf[e.data_start:e.end]) if i != index else content
        out += pack.data[e.offset:e.data_start] if i != index else (
            packfile._encode_entry_header(e.kind, len(raw)) + (e.base if e.kind == packfile.REF_DELTA else b""))
        out += zlib.compress(raw)
    return bytes(out + hashlib.sha1(out).digest())


@PROPERTY
@given(data=st.data())
def test_the_pack_reader_never_fails_on_damaged_deltas_with_anything_but_a_format_error(demo_rw, data):
    """Valid zlib and checksum around damaged object content: deep in the delta code."""
    pack = rwfile.read_rw(demo_rw).pack
    deltas = [i for i, e in enumerate(pack.entries) if e.kind in (packfile.OFS_DELTA, packfile.REF_DELTA)]
    assert deltas
    index = data.draw(st.sampled_from(deltas))
    e = pack.entries[index]
    raw = bytearray(zlib.decompress(pack.data[e.data_start:e.end]))
    action = data.draw(st.sampled_from(["flip", "cut", "append"]))
    if action == "flip":
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    elif action == "cut":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=20))
    try:
        parsed = packfile.parse_pack(_rebuild(pack, index, bytes(raw)))
    except FormatError:
        return
    assert all(x.oid is not None for x in parsed.entries)  # a different but valid delta


@given(kind=st.sampled_from([1, 2, 3, 4, 6, 7]), size=st.integers(0, 2**62))
def test_entry_headers_round_trip(kind, size):
    header = packfile._encode_entry_header(kind, size)
    assert packfile._entry_header(memoryview(header), 0, len(header)) == (kind, size, len(header))


@given(st.integers(1, 2**56))
def test_offset_distances_round_trip(dist):
    encoded = packfile._encode_ofs_distance(dist)
    assert packfile._ofs_distance(memoryview(encoded), 0, len(encoded)) == (dist, len(encoded))
