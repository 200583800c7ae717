"""rewind: a time-travel debugger for AI agents, shaped as a git repository of recordings.

The library is the product; the ``rewind`` command is a thin skin over it::

    import rewind_vcs
    repo = rewind_vcs.Repo.find(".")
    for session in repo.sessions():
        print(session.id, session.name, session.steps)

Heavy modules (pygit2, the proxy) are imported lazily so that ``rewind --help``
starts fast.
"""

from __future__ import annotations

import logging

__version__ = "0.1.0"

# The library logs (one logger per module) and never prints; what reaches the
# terminal is the application's choice (the CLI installs its own handler).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["Repo", "__version__"]


def __getattr__(name: str):
    if name == "Repo":
        from rewind_vcs.store.repo import Repo

        return Repo
    raise AttributeError(name)
