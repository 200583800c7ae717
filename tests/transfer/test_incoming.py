"""The checks every arriving ref and session passes (in-process, no network)."""

from __future__ import annotations

import pytest
import zstandard

from rewind_vcs.store.repo import Repo
from rewind_vcs.transfer.incoming import SessionRejected, check_session, ref_problem, visible
from rewind_vcs.transfer.rwformat import Corrupt
from rewind_vcs.transfer.rwread import MIN_CAP, decompress_pack, size_cap
from tests import factories
from tests.security import transfer_craft as craft

SID = "0123456789ab"


@pytest.mark.parametrize("name", [
    f"refs/sessions/{SID}/main", f"refs/sessions/{SID}/fork-1", "refs/tags/good", "refs/tags/v1.2_x",
    "refs/baselines/ref-run", "refs/notes/evals",
])
def test_names_that_may_arrive(name):
    assert ref_problem(name) is None


@pytest.mark.parametrize("name, why", [
    ("refs/heads/main", "outside"),
    ("refs/sessions/x/main", "12-hex"),
    (f"refs/sessions/{SID.upper()}/main", "12-hex"),
    (f"refs/sessions/{SID}/a/b", "12-hex"),
    ("refs/tags/HEAD", "rewind tag"),
    ("refs/tags/latest", "rewind tag"),
    ("refs/tags/step-3", "rewind tag"),
    ("refs/tags/a/b", "rewind tag"),
    ("refs/tags/good\u202etxt", "bidirectional"),
    ("refs/tags/\u200bzero-width", "bidirectional"),
    ("refs/tags/\x1b[31mx", "not a valid ref name"),
    ("refs/tags/x\n", "not a valid ref name"),
    ("refs/tags/a..b", "not a valid ref name"),
    ("refs/tags/\udcff", "not a valid ref name"),
    ("refs/tags/" + "a" * 100_000, "rewind tag"),
])
def test_names_that_may_not(name, why):
    assert why in (ref_problem(name) or "")


def test_visible_escapes_and_caps():
    assert visible("a\x1b[2Jb\u202ec\x07") == "a\\x1b[2Jb\\u202ec\\x07"
    assert len(visible("x" * 100_000)) == 83 and visible("plain name") == "plain name"


def test_a_real_session_passes_and_a_code_commit_does_not(tmp_path):
    repo = Repo.init(tmp_path)
    sid = factories.write_session(repo, 2)
    tips = {"main": str(repo.git.references[f"refs/sessions/{sid}/main"].target)}
    assert check_session(repo, sid, tips) == 2
    with pytest.raises(SessionRejected, match="root commit"):
        check_session(repo, "ffffffffffff", tips)  # the id is not its root's
    code = craft.code_commit_session(repo)
    with pytest.raises(SessionRejected, match="session.json"):
        check_session(repo, code, {"main": str(repo.git.references[f"refs/sessions/{code}/main"].target)})
    newer = craft.newer_format_session(repo)
    with pytest.raises(SessionRejected, match="newer rewind"):
        check_session(repo, newer, {"main": str(repo.git.references[f"refs/sessions/{newer}/main"].target)})


def test_size_cap():
    assert size_cap(1) == MIN_CAP and size_cap(1 << 20) == 1 << 30 and size_cap(1 << 40) == 16 << 30


def test_decompress_pack_is_exact_and_bounded():
    pack = b"PACK\0\0\0\2\0\0\0\3" + b"x" * 5000
    frame = zstandard.ZstdCompressor(write_content_size=True).compress(pack)
    assert decompress_pack(frame, len(pack), 3) == pack
    for payload, declared, objects, why in (
        (frame, len(pack), 4, "counts 4 objects"),
        (frame, len(pack) + 1, 3, "does not match the header"),
        (frame + b"\0", len(pack), 3, "bytes after"),
        (frame[:-3], len(pack), 3, "truncated"),
        (craft.zstd_frame_claiming(1 << 40), 1 << 40, 3, "claims a"),
        (craft.zstd_of_zeros(1 << 20), 1 << 20, 3, "not a git pack"),
    ):
        with pytest.raises(Corrupt, match=why):
            decompress_pack(payload, declared, objects)


def _pack(*entries: bytes) -> bytes:
    import hashlib
    import struct

    body = b"PACK" + struct.pack(">II", 2, len(entries)) + b"".join(entries)
    return body + hashlib.sha1(body).digest()


def test_a_delta_that_claims_a_huge_object_is_refused_before_it_is_built():
    import hashlib
    import zlib

    from rewind_vcs.transfer import packfile

    blob = b"abc"
    base_id = hashlib.sha1(b"blob 3\0" + blob).digest()

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(out)

    delta = varint(3) + varint(5 << 30) + b"\x80" * 64  # each 0x80 copies 64 KiB: 5 GiB from 66 bytes
    data = _pack(packfile._encode_entry_header(3, 3) + zlib.compress(blob),
                 packfile._encode_entry_header(7, len(delta)) + base_id + zlib.compress(delta))
    with pytest.raises(packfile.CorruptPack, match="larger than 4 GiB"):
        packfile.read_pack(data)
