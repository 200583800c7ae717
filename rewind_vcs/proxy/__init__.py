"""The recording/replaying proxy (see docs/ARCHITECTURE.md, "The proxy").

Its modules log problems to ``rewind_vcs.proxy.<module>`` loggers; a
NullHandler here keeps Python's last-resort handler from printing them when
the application configured no logging (the CLI attaches its own handler).
"""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
