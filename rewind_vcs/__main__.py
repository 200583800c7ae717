"""``python -m rewind_vcs`` is the ``rewind`` command."""

from rewind_vcs.cli.main import main

raise SystemExit(main())
