"""Property tests where a fault could hide: match keys, the ref resolver, the ``.rw`` reader.

What tests/providers, tests/store/test_resolve.py and tests/transfer/test_rwfile.py
already cover (SSE chunking, example-based match keys, id prefixes, single
byte flips and truncations of a ``.rw`` file) is not repeated here:

- match keys: generated requests for the three providers; key order, JSON
  formatting, volatile fields and headers, the host, and a consistent renaming
  of tool-call ids never change the key; any semantic edit always does;
- the resolver: specs from a grammar of everything a user can type (and
  garbage) always give a :class:`Target` or a :class:`RefError`, and the
  well-formed ones give the right target;
- the ``.rw`` reader: files whose checksums are all valid around a damaged
  manifest or damaged records (what a buggy writer or a crafted file could
  hold) are imported or refused with a :class:`RewindError`, never another
  exception; what import accepts, every reader can read; multi-byte edits of
  a valid file are refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import tempfile
from pathlib import Path

import orjson
import pygit2
import pytest
import zstandard
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rewind_vcs.errors import FormatError, RefError, RewindError
from rewind_vcs.providers import match_key
from rewind_vcs.store.records import EndInfo, Request
from rewind_vcs.store.refs import timeline_ref
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.resolve import Target
from rewind_vcs.store.writer import SessionWriter, parse_trailers
from rewind_vcs.transfer import packfile
from tests import factories
from tests.transfer import rw as rwfile

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = settings(max_examples=int(__import__("os").environ.get("FAULTS_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# =====================================================================================================
# Match keys
# =====================================================================================================

_words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_ids = st.text("abcdefghijklmnopqrstuvwxyz0123456789_", min_size=3, max_size=10)
_scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | _words
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_words, inner, max_size=3),
                     max_leaves=8)


@st.composite
def openai_chat(draw) -> dict:
    messages: list[dict] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(_words)})
    for turn in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(_words)})
        if draw(st.booleans()):
            calls = draw(st.lists(_ids, min_size=1, max_size=2, unique=True))
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": c, "type": "function", "function": {"name": "lookup", "arguments": json.dumps({"q": turn})}}
                for c in calls]})
            messages += [{"role": "tool", "tool_call_id": c, "content": draw(_words)} for c in calls]
    body = {"model": draw(st.sampled_from(["gpt-4o-mini", "gpt-4.1", "o3"])), "messages": messages}
    for name, values in (("temperature", st.floats(0, 2, allow_nan=False)), ("max_tokens", st.integers(1, 4096)),
                         ("stream", st.booleans()), ("seed", st.integers(0, 99))):
        if draw(st.booleans()):
            body[name] = draw(values)
    if draw(st.booleans()):
        body["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": draw(_json)}}]
    return body


@st.composite
def anthropic_messages(draw) -> dict:
    messages: list[dict] = []
    for _turn in range(draw(st.integers(1, 3))):
        messages.append({"role": "user", "content": draw(_words)})
        if draw(st.booleans()):
            ids = draw(st.lists(_ids, min_size=1, max_size=2, unique=True))
            thinking = [{"type": "thinking", "thinking": draw(_words), "signature": draw(_ids)}] \
                if draw(st.booleans()) else []
            messages.append({"role": "assistant", "content": thinking + [
                {"type": "tool_use", "id": i, "name": "lookup", "input": {"q": draw(_words)}} for i in ids]})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": i, "content": draw(_words)} for i in ids]})
    body = {"model": draw(st.sampled_from(["claude-haiku-4-5", "claude-sonnet-4-5"])),
            "max_tokens": draw(st.integers(1, 4096)), "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(_words)
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1, allow_nan=False))
    return body


@st.composite
def gemini_content(draw) -> dict:
    contents: list[dict] = []
    for _turn in range(draw(st.integers(1, 3))):
        contents.append({"role": "user", "parts": [{"text": draw(_words)}]})
        if draw(st.booleans()):
            call_id = draw(_ids)
            call = {"functionCall": {"id": call_id, "name": "lookup", "args": {"q": draw(_words)}}}
            if draw(st.booleans()):
                call["thoughtSignature"] = draw(_ids)
            contents.append({"role": "model", "parts": [call]})
            contents.append({"role": "user", "parts": [
                {"functionResponse": {"id": call_id, "name": "lookup", "response": {"r": draw(_words)}}}]})
    body: dict = {"contents": contents}
    if draw(st.booleans()):
        body["generationConfig"] = {"temperature": draw(st.floats(0, 2, allow_nan=False))}
    return body


PROVIDERS = {
    "openai": (openai_chat(), "/v1/chat/completions", ("user", "metadata", "stream_options", "store",
                                                       "safety_identifier", "prompt_cache_key")),
    "anthropic": (anthropic_messages(), "/v1/messages", ("metadata",)),
    "gemini": (gemini_content(), "/v1beta/models/gemini-2.5-flash:generateContent", ("labels",)),
}
HOSTS = {"openai": "api.openai.com", "anthropic": "api.anthropic.com",
         "gemini": "generativelanguage.googleapis.com"}


def make(provider: str, body: dict, *, host: str | None = None, headers=None, raw: bytes | None = None) -> Request:
    path = PROVIDERS[provider][1]
    return Request("POST", "https", host or HOSTS[provider], path,
                   headers or [("content-type", "application/json")], raw if raw is not None else
                   json.dumps(body).encode())


def key(provider: str, request: Request) -> str:
    return match_key(request, provider)


def shuffled(value, rnd: random.Random):
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rnd) for v in value]
    return value


def renamed_ids(provider: str, body: dict, mapping: dict[str, str]) -> dict:
    body = copy.deepcopy(body)
    if provider == "openai":
        for m in body["messages"]:
            for tc in m.get("tool_calls") or []:
                tc["id"] = mapping[tc["id"]]
            if "tool_call_id" in m:
                m["tool_call_id"] = mapping[m["tool_call_id"]]
    elif provider == "anthropic":
        for m in body["messages"]:
            for block in m["content"] if isinstance(m["content"], list) else []:
                if "id" in block and block["type"] == "tool_use":
                    block["id"] = mapping[block["id"]]
                if "tool_use_id" in block:
                    block["tool_use_id"] = mapping[block["tool_use_id"]]
                if "signature" in block:
                    block["signature"] = "sig-" + block["signature"]  # opaque, new on every run
    else:
        for c in body["contents"]:
            for part in c["parts"]:
                for k in ("functionCall", "functionResponse"):
                    if k in part:
                        part[k]["id"] = mapping[part[k]["id"]]
                if "thoughtSignature" in part:
                    part["thoughtSignature"] = "sig-" + part["thoughtSignature"]
    return body


def tool_ids(provider: str, body: dict) -> list[str]:
    text = json.dumps(body)
    found = []
    for pattern in ('"id": "', '"tool_call_id": "', '"tool_use_id": "'):
        start = 0
        while (i := text.find(pattern, start)) >= 0:
            j = text.index('"', i + len(pattern))
            found.append(text[i + len(pattern):j])
            start = j
    return sorted(set(found))


_provider = st.sampled_from(sorted(PROVIDERS))


@FAST
@given(provider=_provider, data=st.data(), seed=st.integers(0, 2**32), indent=st.sampled_from([None, 1, 4]),
       ascii_only=st.booleans())
def test_key_order_formatting_host_and_headers_never_change_the_key(provider, data, seed, indent, ascii_only):
    body = data.draw(PROVIDERS[provider][0])
    base = key(provider, make(provider, body))
    raw = json.dumps(shuffled(body, random.Random(seed)), indent=indent, ensure_ascii=ascii_only).encode()
    headers = [("Content-Type", "application/json"), ("authorization", "Bearer sk-x"), ("x-api-key", "k"),
               ("x-stainless-retry-count", str(seed % 3)), ("x-request-id", str(seed)), ("user-agent", "z")]
    same = make(provider, body, host=f"127.0.0.1:{seed % 60000 + 1}", headers=headers, raw=raw)
    assert key(provider, same) == base


@FAST
@given(provider=_provider, data=st.data())
def test_volatile_fields_never_change_the_key(provider, data):
    body = data.draw(PROVIDERS[provider][0])
    base = key(provider, make(provider, body))
    volatile = PROVIDERS[provider][2]
    noisy = dict(body)
    for field in data.draw(st.lists(st.sampled_from(volatile), min_size=1, unique=True)):
        noisy[field] = data.draw(_json)
    assert key(provider, make(provider, noisy)) == base


@FAST
@given(provider=_provider, data=st.data())
def test_a_consistent_renaming_of_tool_call_ids_never_changes_the_key(provider, data):
    body = data.draw(PROVIDERS[provider][0])
    ids = tool_ids(provider, body)
    assume(ids)
    fresh = data.draw(st.lists(_ids.map(lambda s: "new_" + s), min_size=len(ids), max_size=len(ids), unique=True))
    renamed = renamed_ids(provider, body, dict(zip(ids, fresh, strict=True)))
    assert key(provider, make(provider, renamed)) == key(provider, make(provider, body))


def _texts(provider: str, body: dict) -> list[tuple[list, object]]:
    """(container, index) of every user-visible text in the request, to edit one."""
    out: list[tuple[list, object]] = []
    if provider == "openai":
        for m in body["messages"]:
            if isinstance(m.get("content"), str):
                out.append((m, "content"))
    elif provider == "anthropic":
        for m in body["messages"]:
            if isinstance(m["content"], str):
                out.append((m, "content"))
    else:
        for c in body["contents"]:
            for part in c["parts"]:
                if "text" in part:
                    out.append((part, "text"))
    return out


@FAST
@given(provider=_provider, data=st.data(), extra=st.text(min_size=1, max_size=5))
def test_any_semantic_edit_always_changes_the_key(provider, data, extra):
    body = data.draw(PROVIDERS[provider][0])
    base = key(provider, make(provider, body))
    edit = data.draw(st.sampled_from(["text", "drop-last", "param", "model"]))
    changed = copy.deepcopy(body)
    if edit == "text":
        container, field = data.draw(st.sampled_from(_texts(provider, changed)))
        container[field] = container[field] + extra
    elif edit == "drop-last":
        items = changed["contents" if provider == "gemini" else "messages"]
        assume(len(items) > 1)
        items.pop()
    elif edit == "param":
        if provider == "gemini":
            changed["generationConfig"] = {"temperature": 7.5}
        else:
            changed["temperature"] = 7.5
    elif provider == "gemini":  # the model is in the path for Gemini
        request = make(provider, changed)
        request.path = request.path.replace("gemini-2.5-flash", "gemini-2.5-pro")
        assert key(provider, request) != base
        return
    else:
        changed["model"] = changed["model"] + "-other"
    assert key(provider, make(provider, changed)) != base


@FAST
@given(provider=_provider, data=st.data())
def test_merging_two_tool_call_ids_changes_the_key(provider, data):
    """Ids are volatile, but which result answers which call is not."""
    body = data.draw(PROVIDERS[provider][0])
    ids = tool_ids(provider, body)
    assume(len(ids) >= 2)
    merged = renamed_ids(provider, body, {i: ids[0] for i in ids})
    assert key(provider, make(provider, merged)) != key(provider, make(provider, body))


# =====================================================================================================
# The ref resolver
# =====================================================================================================


@pytest.fixture(scope="module")
def refs_repo(tmp_path_factory):
    """Sessions named alpha (twice), beta and none; a fork timeline; tags on a tip and on a step."""
    repo = Repo.init(tmp_path_factory.mktemp("refs"))
    ids = [factories.write_session(repo, n, name=name) for n, name in ((3, "alpha"), (2, "beta"), (4, "alpha"),
                                                                        (1, None))]
    main = repo.session(ids[0]).main
    fork = SessionWriter.fork(repo, ids[0], main.commits[2], "fork-1")
    fork.append(factories.exchange("forked"), factories.info())
    fork.finish(EndInfo(exit_code=0))
    repo.git.references.create("refs/tags/good", repo.session(ids[1]).main.tip)
    repo.git.references.create("refs/tags/bad", repo.session(ids[2]).main.steps[1].commit_id)
    return repo, ids


_spec_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
_garbage = st.text(_spec_chars, max_size=20) | st.text("@/-~^:.step0123456789abcdef \t\n", max_size=20)


@st.composite
def spec_of(draw, ids: list[str]) -> str:
    sid = draw(st.sampled_from(ids))
    base = draw(st.sampled_from([
        "HEAD", "latest", "alpha", "beta", "good", "bad", "gamma", "",
        sid, sid[: draw(st.integers(1, 12))], sid.upper(), sid + "0",
        f"{sid}/main", f"{sid}/fork-1", f"alpha/{draw(_garbage)}", f"{sid}/", "/main", f"{sid}/main/x",
    ]) | _garbage)
    suffix = draw(st.sampled_from(["", "@step-", "@", "@@step-1", "@step--1", "@step-1x", "@STEP-1", "@step-٣"])
                  | st.integers(-3, 10**30).map(lambda n: f"@step-{n}") | _garbage.map(lambda g: "@" + g))
    spec = base + suffix
    if draw(st.booleans()):
        spec = draw(st.sampled_from(["step-1", "step-0", "step-99", "step-", "step-01", " step-2 "]))
    pad = draw(st.sampled_from(["", " ", "\t", "\n"]))
    return pad + spec + pad


def _set_head(repo: Repo, ids: list[str], state: str) -> None:
    git = repo.git
    if state == "unborn":
        git.set_head("refs/heads/nothing-here")
    elif state == "symbolic":
        git.set_head(timeline_ref(ids[0], "fork-1"))
    elif state == "detached":
        git.set_head(pygit2.Oid(hex=repo.session(ids[2]).main.steps[0].commit_id))
    else:  # symbolic to a timeline that does not exist (deleted since): git's own HEAD file
        (repo.path / "HEAD").write_text(f"ref: {timeline_ref('0' * 12, 'main')}\n")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), head=st.sampled_from(["unborn", "symbolic", "detached", "dangling"]))
def test_any_spec_is_a_target_or_a_ref_error(refs_repo, data, head):
    repo, ids = refs_repo
    _set_head(repo, ids, head)
    spec = data.draw(spec_of(ids))
    try:
        target = repo.resolve(spec)
    except RefError as exc:
        assert str(exc)
        if len(spec.strip().splitlines()) <= 1:  # a spec with a line break is quoted as typed
            assert len(exc.message.splitlines()) == 1, exc.message
        return
    assert isinstance(target, Target)
    assert target.session_id in ids
    assert repo.git.get(target.commit) is not None
    if target.step is not None:
        timeline = repo.session(target.session_id).timeline(target.timeline or "main")
        assert timeline.step(target.step).commit_id == target.commit


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_well_formed_specs_resolve_to_the_right_step(refs_repo, data):
    repo, ids = refs_repo
    _set_head(repo, ids, "symbolic")
    lengths = {sid: len(repo.session(sid).main.steps) for sid in ids}
    which = data.draw(st.sampled_from(["name", "id", "prefix", "timeline", "head"]))
    if which == "name":
        name, sid = data.draw(st.sampled_from([("alpha", ids[2]), ("beta", ids[1])]))
        spec, timeline = name, "main"
    elif which == "id":
        sid = data.draw(st.sampled_from(ids))
        spec, timeline = sid, "main"
    elif which == "prefix":
        sid = data.draw(st.sampled_from(ids))
        shortest = next(k for k in range(1, 13) if sum(i.startswith(sid[:k]) for i in ids) == 1)
        spec, timeline = sid[: data.draw(st.integers(shortest, 12))], "main"
    elif which == "timeline":
        sid, timeline = ids[0], "fork-1"
        spec = f"{sid}/fork-1"
    else:
        sid, timeline, spec = ids[0], "fork-1", "HEAD"
    n_steps = len(repo.session(sid).timeline(timeline).steps)
    n = data.draw(st.integers(1, n_steps))
    form = data.draw(st.sampled_from(["at", "bare"]) if spec == "HEAD" else st.just("at"))
    target = repo.resolve(f"{spec}@step-{n}" if form == "at" else f"step-{n}")
    assert (target.session_id, target.timeline, target.step) == (sid, timeline, n)
    assert lengths[sid] >= 1


@pytest.mark.parametrize("spec", ["\udcff", "alpha/\udcff", "\udcff@step-1"])
def test_a_spec_that_is_not_utf8_is_a_ref_error(refs_repo, spec):
    repo, _ = refs_repo
    with pytest.raises(RefError):
        repo.resolve(spec)


# =====================================================================================================
# The .rw reader
# =====================================================================================================


def _craft(pack: bytes, manifest) -> bytes:
    """A .rw file whose checksums are all valid around any pack and manifest."""
    payload = zstandard.ZstdCompressor(write_content_size=True).compress(pack)
    return rwfile._assemble(orjson.dumps(manifest), payload, len(pack))


def _snapshot(repo: Repo) -> dict[str, str]:
    return {str(p.relative_to(repo.path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.path.rglob("*")) if p.is_file()}


def read_everything(repo: Repo) -> None:
    """Every read the CLI does on an imported session (log, show, replay's inputs)."""
    for summary in repo.sessions(use_cache=False):
        summary.to_json()
        session = repo.session(summary.id)
        session.info  # noqa: B018
        for timeline in session.timelines():
            timeline.status  # noqa: B018
            timeline.end  # noqa: B018
            timeline.fork_point  # noqa: B018
            for step in timeline.steps:
                step.exchange  # noqa: B018
                match_key(step.request, step.info.provider)
        repo.resolve(summary.id)


def import_or_refuse(data: bytes) -> Repo | None:
    """Import into a fresh repository holding a session of its own: the imported repo, or None if refused."""
    target = Repo.init(tempfile.mkdtemp(prefix="rw-target-"))
    factories.write_session(target, 1, name="local")
    before = _snapshot(target)
    try:
        rwfile.import_rw(target, data)
    except RewindError as exc:
        assert str(exc) and "\n" not in str(exc)
        assert _snapshot(target) == before  # a refused file changes nothing
        return None
    return target


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A finished session of two steps: its commits, root first, and each one's files."""
    repo = Repo.init(tmp_path_factory.mktemp("rw-source"))
    sid = factories.write_session(repo, 2, name="orig")
    git = repo.git
    chain = []
    commit = git[repo.session(sid).main.tip]
    while True:
        chain.append(commit)
        if not commit.parent_ids:
            break
        commit = git[commit.parent_ids[0]]
    chain.reverse()
    files = [_files(git, c.tree) for c in chain]
    valid = tmp_path_factory.mktemp("rw-export") / "valid.rw"
    rwfile.export_rw(repo, [sid], output=valid)
    return Source(sid, [(c.message, c.author.time, f) for c, f in zip(chain, files, strict=True)],
                  valid.read_bytes())


class Source(dict):
    """``sid``, ``commits`` (message, time, files) root first, and the ``valid`` export; a short repr."""

    def __init__(self, sid: str, commits: list, valid: bytes) -> None:
        super().__init__(sid=sid, commits=commits, valid=valid)

    def __repr__(self) -> str:
        return f"Source({self['sid']})"


def _files(git, tree, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for entry in tree:
        obj = git[entry.id]
        if isinstance(obj, pygit2.Tree):
            out.update(_files(git, obj, prefix + entry.name + "/"))
        else:
            out[prefix + entry.name] = obj.data
    return out


def _tree(git, files: dict[str, bytes]):
    nested: dict = {}
    for path, data in files.items():
        *dirs, name = path.split("/")
        node = nested
        for d in dirs:
            node = node.setdefault(d, {})
            if not isinstance(node, dict):
                return None  # a file and a directory of the same name: not a tree git can hold
        node[name] = data

    def write(node: dict):
        builder = git.TreeBuilder()
        for name, value in sorted(node.items()):
            if isinstance(value, dict):
                builder.insert(name, write(value), pygit2.enums.FileMode.TREE)
            else:
                builder.insert(name, git.create_blob(value), pygit2.enums.FileMode.BLOB)
        return builder.write()

    return write(nested)


def rebuild(commits, old_sid: str) -> bytes | None:
    """The history ``commits`` as a consistent git history in a .rw file with valid checksums."""
    work = Path(tempfile.mkdtemp(prefix="rw-craft-"))
    crafted = Repo.init(work)
    git = crafted.git
    parent, sid = None, None
    for i, (message, when, files) in enumerate(commits):
        tree = _tree(git, files)
        if tree is None:
            return None
        if sid:
            message = message.replace(old_sid, sid)
        sig = pygit2.Signature("rewind", "rewind@localhost", when, 0)
        parent = git.create_commit(None, sig, sig, message, tree, [parent] if parent else [])
        if i == 0:
            sid = str(parent)[:12]
    refs = {timeline_ref(sid): str(parent)}
    pack = rwfile.build_pack(crafted, refs, work).read_bytes()
    steps = max(0, len(commits) - 2)
    return _craft(pack, {"format": 1, "rewind_version": "0", "created_at": 0, "refs": refs,
                         "sessions": [{"id": sid, "name": "orig", "timelines": ["main"], "steps": steps}],
                         "counts": {"sessions": 1, "timelines": 1, "steps": steps, "refs": 1,
                                    "objects": len(packfile.parse_pack(pack).entries)}})


def test_the_rebuilt_history_imports_and_reads_when_nothing_is_damaged(source):
    """The crafting below is sound: undamaged, it imports and reads."""
    data = rebuild(source["commits"], source["sid"])
    target = import_or_refuse(data)
    assert target is not None
    read_everything(target)
    assert any(s.name == "orig" and s.steps == 2 for s in target.sessions(use_cache=False))


_int64 = st.integers(-(2**63), 2**63 - 1)  # what JSON numbers orjson writes
_RECORDS = {"session.json", "step.json", "request/meta.json", "response/meta.json", "end.json"}
# Left out until the bug test_a_step_record_whose_usage_is_not_an_object_is_refused shows is fixed.
_KNOWN = {("step.json", "usage")}


@st.composite
def damage(draw, commits):
    """One edit to one file, or the message, of one commit; returns the damaged history."""
    commits = [(m, t, dict(f)) for m, t, f in commits]
    index = draw(st.integers(0, len(commits) - 1))
    message, when, files = commits[index]
    where = draw(st.sampled_from(sorted(files) + ["message", "new file"]))
    if where == "message":
        trailers = parse_trailers(message)
        name = draw(st.sampled_from(sorted(trailers) + ["Rewind-Kind", "Rewind-Exit", "Rewind-Step"]))
        assume(("message", name) not in _KNOWN)
        value = draw(st.sampled_from(["", "x", "-1", "end", "step", "session", "1e99", "none"]) | _words)
        lines = [ln for ln in message.splitlines() if not ln.startswith(name + ": ")]
        if draw(st.booleans()):
            lines.append(f"{name}: {value}")
        message = "\n".join(lines) + "\n"
    elif where == "new file":
        files[draw(st.sampled_from(["extra", "request/extra", "step.json/inner", "response"]))] = b"{}"
    elif where in _RECORDS:
        how = draw(st.sampled_from(["drop", "bytes", "json", "field", "remove-field"]))
        if how == "drop":
            del files[where]
        elif how == "bytes":
            files[where] = draw(st.binary(max_size=40))
        elif how == "json":
            files[where] = orjson.dumps(draw(_json))
        else:
            record = orjson.loads(files[where])
            field = draw(st.sampled_from(sorted(record)))
            assume((where, field) not in _KNOWN)
            if how == "field":
                record[field] = draw(_json | st.floats(allow_nan=False) | _int64)
            else:
                del record[field]
            files[where] = orjson.dumps(record)
    else:  # a body or stdout: any bytes are a valid recording
        files[where] = draw(st.binary(max_size=40))
    commits[index] = (message, when, files)
    return commits


@SLOW
@given(data=st.data())
def test_damaged_records_with_valid_checksums_are_imported_or_refused_cleanly(source, data):
    commits = data.draw(damage(source["commits"]))
    crafted = rebuild(commits, source["sid"])
    assume(crafted is not None)
    import_or_refuse(crafted)


_manifest_paths = st.sampled_from([
    ("format",), ("rewind_version",), ("created_at",), ("object_format",), ("refs",), ("sessions",),
    ("counts",), ("sessions", 0), ("sessions", 0, "id"), ("sessions", 0, "name"), ("sessions", 0, "timelines"),
    ("sessions", 0, "steps"), ("counts", "objects"), ("counts", "steps"), ("counts", "refs"), ("extra",),
])


@SLOW
@given(path=_manifest_paths, value=_json | _int64 | st.floats(allow_nan=False), drop=st.booleans())
def test_any_manifest_in_a_valid_envelope_is_imported_or_refused_cleanly(source, path, value, drop):
    valid = source["valid"]
    m_len = int.from_bytes(valid[12:16], "big")
    manifest = orjson.loads(valid[64:64 + m_len])
    node = manifest
    for part in path[:-1]:
        node = node[part]
    if drop and isinstance(node, dict):
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    pack = rwfile.read_rw(valid).pack.data
    target = import_or_refuse(_craft(pack, manifest))
    if target is not None:
        read_everything(target)


@SLOW
@given(data=st.data())
def test_multi_byte_edits_of_a_valid_file_are_refused(source, data):
    """Runs of flipped bytes, inserted and deleted ranges, a range copied elsewhere."""
    raw = bytearray(source["valid"])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        length = data.draw(st.integers(1, 64))
        how = data.draw(st.sampled_from(["flip", "insert", "delete", "copy"]))
        if how == "flip":
            for i in range(at, min(len(raw), at + length)):
                raw[i] ^= data.draw(st.integers(1, 255))
        elif how == "insert":
            raw[at:at] = data.draw(st.binary(min_size=1, max_size=length))
        elif how == "delete":
            del raw[at:at + length]
        else:
            src = data.draw(st.integers(0, len(raw) - 1))
            piece = raw[src:src + length]
            assume(raw[at:at + len(piece)] != piece)
            raw[at:at + len(piece)] = piece
    assume(bytes(raw) != source["valid"])
    with pytest.raises(FormatError):
        rwfile.read_rw(bytes(raw))


def test_a_step_record_whose_usage_is_not_an_object_is_refused(source):
    commits = [(m, t, dict(f)) for m, t, f in source["commits"]]
    record = orjson.loads(commits[1][2]["step.json"])
    record["usage"] = [1]
    commits[1][2]["step.json"] = orjson.dumps(record)
    assert import_or_refuse(rebuild(commits, source["sid"])) is None


def _retrailer(commits, index: int, name: str, value: str):
    message, when, files = commits[index]
    lines = [f"{name}: {value}" if ln.startswith(name + ": ") else ln for ln in message.splitlines()]
    commits[index] = ("\n".join(lines) + "\n", when, files)


def _remeta(commits, index: int, path: str, field: str, value):
    message, when, files = commits[index]
    record = orjson.loads(files[path])
    record[field] = value
    files[path] = orjson.dumps(record)


ACCEPTED_BUT_UNREADABLE = {
    # tip trailer the listing parses: ValueError in rewind_vcs/store/session.py status_from_tip (int(raw))
    "exit trailer not an int": lambda c: _retrailer(c, -1, "Rewind-Exit", "abc"),
    # ValueError in rewind_vcs/store/index.py _row_from_tip (float of the trailer)
    "cost trailer empty": lambda c: _retrailer(c, -1, "Rewind-Cost", ""),
    # AttributeError in urllib (openai.endpoint_of -> urlsplit) from rewind_vcs/providers/registry.py detect
    "request path not a string": lambda c: _remeta(c, 1, "request/meta.json", "path", 5),
    # AttributeError in rewind_vcs/providers/registry.py host_provider (host.strip)
    "request host not a string": lambda c: _remeta(c, 1, "request/meta.json", "host", 1.5),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED_BUT_UNREADABLE))
def test_what_import_accepts_every_reader_can_read(source, case):
    commits = [(m, t, dict(f)) for m, t, f in source["commits"]]
    ACCEPTED_BUT_UNREADABLE[case](commits)
    target = import_or_refuse(rebuild(commits, source["sid"]))
    if target is not None:
        try:
            read_everything(target)
        except RewindError:
            pass
