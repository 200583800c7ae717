"""``rewind share``: a session as one self-contained HTML file (see :mod:`rewind_vcs.share.html`)."""

from __future__ import annotations

from rewind_vcs.share.data import ShareData, share_data
from rewind_vcs.share.html import SharePage, build_page, render_html, write_page

__all__ = ["ShareData", "SharePage", "build_page", "render_html", "share_data", "write_page"]
