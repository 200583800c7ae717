"""The ``.rw`` API in one namespace for the tests (``rw.export_rw``, ``rw.read_rw``, ...), and a crafting helper."""

from __future__ import annotations

from rewind_vcs.transfer.rwexport import build_pack, export_rw, select_refs
from rewind_vcs.transfer.rwformat import (
    EXPORTED_PREFIXES,
    FIXED,
    HEADER_SIZE,
    MAGIC,
    RW_FORMAT,
    Manifest,
    Stage,
    assemble,
    read_header,
)
from rewind_vcs.transfer.rwimport import RefAction, apply_rw, import_rw, load_rw, verify_rw
from rewind_vcs.transfer.rwread import read_rw

_FIXED = FIXED
_assemble = assemble

__all__ = ["EXPORTED_PREFIXES", "FIXED", "HEADER_SIZE", "MAGIC", "RW_FORMAT", "Manifest", "RefAction", "Stage",
           "_FIXED", "_assemble", "apply_rw", "assemble", "build_pack", "export_rw", "import_rw", "load_rw",
           "read_header", "read_rw", "select_refs", "verify_rw"]
