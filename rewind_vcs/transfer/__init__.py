"""Moving sessions between repositories: remotes (push, fetch, pull, clone) and ``.rw`` files.

This layer sits on the object store (``store`` may never import it) and under
everything that uses it (``cli``, ``share``, ...). Every way sessions arrive
from elsewhere goes through :mod:`.incoming`, one set of checks for
``import`` and ``fetch``/``pull``/``clone``.

==================  ===========================================================
``remotes``         configured remotes, what a typed remote name or URL means
``refupdate``       the per-ref rules of push and fetch, and their result values
``gitnet``          libgit2: credentials, progress, errors, advertised refs
``push``            ``rewind push`` and the ``pre-push`` hook
``fetch``           ``rewind fetch`` / ``pull`` / ``clone`` (quarantine, checks, ref moves)
``incoming``        the checks every incoming session and ref name must pass
``rwformat``        the ``.rw`` header and manifest
``rwexport``        ``rewind export``: the ``.rw`` writer
``rwread``          reading a ``.rw`` file with bounded decompression
``rwimport``        ``rewind import``: verification in a scratch repository, then objects and refs
``packfile``        git packs in pure Python: parse, verify, re-encode, write the ``.idx``
==================  ===========================================================

Modules are imported by their own names (``from rewind_vcs.transfer.fetch
import fetch``): importing this package imports nothing, so the CLI's start-up
stays free of pygit2 until a command needs it.
"""
