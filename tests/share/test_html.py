"""The HTML page: self-contained, escaped, and drawn correctly by a real browser (headless Chromium)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.share.html import build_page, embed_json, write_page
from tests.share import dom
from tests.share.conftest import (
    ALERT,
    HOSTILE_NAME,
    HOSTILE_SPAN,
    MARKER,
    PWN_BREAKOUT,
    PWN_SCRIPT,
    SECRETS,
)


def _sessions(shared):
    return (shared.good, f"{shared.good}/stale-retry", shared.stale, shared.failed, shared.hostile)


def _hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


# -- the file itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("include_content", [False, True])
def test_page_is_self_contained_and_network_free(shared_repo, include_content):
    for ref in _sessions(shared_repo):
        page = build_page(shared_repo.repo, ref, include_content=include_content)
        doc = dom.parse(page.html)
        for el in doc.iter():
            assert "src" not in el.attrs and "href" not in el.attrs, el.tag
            assert not any(name.startswith("on") for name in el.attrs), el.attrs
        assert {e.tag for e in doc.iter()} >= {"html", "head", "style", "script", "noscript", "main"}
        assert not doc.find_all("link") and not doc.find_all("img") and not doc.find_all("iframe")
        assert "@import" not in page.html and "url(" not in page.html and "@font-face" not in page.html
        if not include_content:  # no URL of any kind: the content-free page names no scheme at all
            assert not re.search(r"https?:", page.html), re.search(r".{40}https?:.{40}", page.html)
        scripts = doc.find_all("script")
        assert len(scripts) == 2 and page.html.count("</script") == 2  # nothing from the data closes a script
        (style,) = doc.find_all("style")
        csp = doc.find("meta", http_equiv="Content-Security-Policy").attrs["content"]
        assert csp.startswith("default-src 'none';")  # no fetch, no image, no font from anywhere
        assert f"script-src '{_hash(scripts[1].text())}'" in csp and f"style-src '{_hash(style.text())}'" in csp


def test_embedded_json_is_the_payload_and_has_no_markup(shared_repo):
    page = build_page(shared_repo.repo, shared_repo.hostile, include_content=True)
    block = dom.parse(page.html).find("script", id="rewind-data")
    assert block.attrs["type"] == "application/json"
    raw = block.text()
    assert not set(raw) & set("<>&") and raw.isascii()
    assert json.loads(raw) == json.loads(json.dumps(page.data.payload))
    assert PWN_BREAKOUT not in page.html and ALERT not in page.html
    assert MARKER in raw  # the content is there, escaped


def test_embed_json_escapes_markup_and_non_finite_numbers():
    text = embed_json({"a": "</script><!--", "b": float("nan"), "c": [float("inf")], "d": "\u2028é"})
    assert text == '{"a":"\\u003c/script\\u003e\\u003c!--","b":null,"c":[null],"d":"\\u2028\\u00e9"}'
    assert json.loads(text)["a"] == "</script><!--"


@pytest.mark.parametrize("include_content", [False, True])
def test_no_api_key_in_any_page(shared_repo, include_content):
    for ref in _sessions(shared_repo):
        html = build_page(shared_repo.repo, ref, include_content=include_content).html
        for secret in SECRETS:
            assert secret not in html
        assert "Bearer" not in html and "x-api-key" not in html.lower()


def test_content_free_page_has_no_user_text(shared_repo):
    for ref in _sessions(shared_repo):
        html = build_page(shared_repo.repo, ref).html
        assert MARKER not in html and "electric cars" not in html


def test_noscript_fallback_lists_the_steps(shared_repo):
    page = build_page(shared_repo.repo, "research-500")
    rows = dom.parse(page.html).find("noscript").find_all("tr")[1:]
    assert [r.find_all("td")[3].text() for r in rows] == ["gpt-4o-mini"] * 3
    assert rows[2].classes == {"error"} and rows[2].find_all("td")[8].text().startswith("HTTP 500")


def test_title_and_fallback_escape_a_hostile_name(shared_repo):
    html = build_page(shared_repo.repo, shared_repo.hostile, include_content=True).html
    doc = dom.parse(html)
    assert doc.find("title").text().startswith(f"rewind · {HOSTILE_NAME}")
    assert doc.find("noscript").find("h1").text() == HOSTILE_NAME
    assert HOSTILE_NAME not in html  # only its escaped form is in the file


# -- writing -------------------------------------------------------------------------------------


def test_write_page_is_atomic_and_readable(shared_repo, tmp_path):
    page = build_page(shared_repo.repo, shared_repo.good)
    out = write_page(page, tmp_path / "session.html")
    assert out.read_text(encoding="utf-8") == page.html
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["session.html"]  # no temporary file left


@pytest.mark.parametrize("where", ["missing/dir/page.html", "."])
def test_write_page_errors_are_one_line(shared_repo, tmp_path, where):
    page = build_page(shared_repo.repo, shared_repo.good)
    with pytest.raises(ConfigError) as exc:
        write_page(page, tmp_path / where)
    assert "\n" not in str(exc.value) and str(tmp_path) in str(exc.value)


# -- in a real browser ---------------------------------------------------------------------------


def _render(browser, write, repo, ref, *, include_content=False, name="page.html"):
    page = build_page(repo, ref, include_content=include_content)
    dumped = browser.dump_dom(write(page, name))
    doc = dom.parse(dumped)
    html_el = doc.find("html")
    assert html_el.attrs.get("data-rendered") == "ok", "the page's script did not finish"
    assert html_el.attrs.get("data-styled") == "1", "the stylesheet was not applied (CSP hash?)"
    return page, doc


def _step_rows(doc):
    app = doc.find("main", id="app")
    return [r for r in app.find_all("tr") if "step" in r.classes]


@pytest.mark.timeout(900)  # the first browser test may install Chromium (bounded by its own budget)
@pytest.mark.parametrize("which", ["good", "failed"])
def test_browser_shows_every_step_with_model_and_status(browser, write, shared_repo, which):
    repo = shared_repo.repo
    page, doc = _render(browser, write, repo, getattr(shared_repo, which))
    timeline = repo.session(page.data.session_id).main
    rows = _step_rows(doc)
    assert [int(r.attrs["data-step"]) for r in rows] == [s.n for s in timeline.steps]
    for row, step in zip(rows, timeline.steps, strict=True):
        cells = [c.text() for c in row.find_all("td")]
        assert cells[4] == step.info.model and cells[6].startswith(step.info.status.value)
        assert ("error" in row.classes) == (step.info.status.value == "error")
    app = doc.find("main", id="app")
    summary = app.find("header", id="summary").text()
    assert page.data.session_id in summary and f"{len(timeline.steps)}" in summary
    tree_steps = {int(n.attrs["data-step"]) for n in app.find("section", id="trace").find_all("div")
                  if "node" in n.classes and n.attrs.get("data-step")}
    assert tree_steps == {s.n for s in timeline.steps}
    if which == "failed":
        failed = rows[2]
        assert "error" in failed.classes and "HTTP 500" in failed.text()
        assert "failed" in summary


@pytest.mark.timeout(900)
def test_browser_shows_timelines_with_fork_points(browser, write, shared_repo):
    _, doc = _render(browser, write, shared_repo.repo, f"{shared_repo.good}/stale-retry")
    app = doc.find("main", id="app")
    assert app.attrs["data-timeline"] == "stale-retry"
    rows = app.find("section", id="timelines").find_all("tr")[1:]
    table = {r.attrs["data-timeline"]: [c.text() for c in r.find_all("td")] for r in rows}
    assert table["main"][2] == "original run" and table["stale-retry"][2] == "forked at step-2"
    assert "selected" in rows[1].classes
    assert [int(r.attrs["data-step"]) for r in _step_rows(doc)] == [1, 2, 3, 4]
    rows = app.find("section", id="steps").find_all("tr")
    divider = next(i for i, r in enumerate(rows) if "fork-divider" in r.classes)
    assert rows[divider - 1].attrs["data-step"] == "2" and "forks here" in rows[divider].text()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("include_content", [False, True])
def test_browser_renders_hostile_text_as_text(browser, write, shared_repo, include_content):
    page, doc = _render(browser, write, shared_repo.repo, shared_repo.hostile, include_content=include_content)
    html_el = doc.find("html")
    assert "data-pwned" not in html_el.attrs
    app = doc.find("main", id="app")
    assert not app.find_all("img") and not app.find_all("script")
    text = app.text()
    assert HOSTILE_NAME in text and HOSTILE_SPAN in text  # identifiers, shown verbatim as text
    assert (MARKER in text) == include_content
    if include_content:
        assert PWN_SCRIPT in text and PWN_BREAKOUT in text and ALERT in text
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.timeout(900)
def test_escaping_holds_without_the_content_security_policy(browser, tmp_path, shared_repo):
    """The CSP would stop an injected script anyway: check the escaping alone keeps it out."""
    page = build_page(shared_repo.repo, shared_repo.hostile, include_content=True)
    bare = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.html)
    assert bare != page.html
    path = tmp_path / "no-csp.html"
    path.write_text(bare, encoding="utf-8")
    doc = dom.parse(browser.dump_dom(path))
    html_el = doc.find("html")
    assert html_el.attrs.get("data-rendered") == "ok" and "data-pwned" not in html_el.attrs
    assert ALERT in doc.find("main", id="app").text()


@pytest.mark.timeout(900)
def test_browser_focuses_a_step_ref_and_shows_content_on_demand(browser, write, shared_repo):
    _, doc = _render(browser, write, shared_repo.repo, "good@step-2", include_content=True)
    rows = _step_rows(doc)
    assert [r.attrs["data-step"] for r in rows if "focus" in r.classes] == ["2"]
    details = doc.find("tr", data_details="2")  # the focused step's content is open, the others folded
    assert "hidden" not in details.attrs and "search" in details.text() and "electric cars" in details.text()
    assert all("hidden" in doc.find("tr", data_details=n).attrs for n in ("1", "3", "4"))


@pytest.mark.timeout(900)
def test_browser_screenshot(browser, write, shared_repo, tmp_path):
    page = build_page(shared_repo.repo, "research-500")
    shot = browser.screenshot(write(page), tmp_path / "page.png")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a drawn page, not a blank one


def test_a_session_without_steps_still_renders(repo):
    writer = repo.create_session(command=["node", "agent.js", "secret input"])
    try:
        page = build_page(repo, writer.id)
    finally:
        writer.close()
    payload = page.data.payload
    assert payload["steps"] == [] and payload["timelines"][0]["tree"]["children"] == []
    assert payload["session"]["name"] is None and payload["session"]["program"] == "node"
    assert payload["session"]["status"] == "recording" and "secret input" not in page.html
    assert dom.parse(page.html).find("noscript").find("h1").text() == writer.id
