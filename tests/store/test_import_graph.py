"""The store's modules import each other one way: no cycle, not even through a function-level import.

The graph is built with ``ast`` from every ``import`` in every store module,
wherever it stands (module level, inside a function, under ``TYPE_CHECKING``),
so a circle cannot hide behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

STORE = Path(__file__).resolve().parents[2] / "rewind_vcs" / "store"
PREFIX = "rewind_vcs.store."


def _targets(node: ast.AST, modules: set[str]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name[len(PREFIX):].split(".")[0] for a in node.names if a.name.startswith(PREFIX)]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "rewind_vcs.store":  # from rewind_vcs.store import format as fmt
            return [a.name for a in node.names if a.name in modules]
        if node.module.startswith(PREFIX):
            return [node.module[len(PREFIX):].split(".")[0]]
    if isinstance(node, ast.ImportFrom) and node.level == 1:  # from .x import y / from . import x
        if node.module:
            return [node.module.split(".")[0]]
        return [a.name for a in node.names if a.name in modules]
    return []


def import_graph(root: Path = STORE) -> dict[str, set[str]]:
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for m in modules:
        tree = ast.parse((root / f"{m}.py").read_text(), f"{m}.py")
        for node in ast.walk(tree):
            graph[m].update(t for t in _targets(node, modules) if t in modules and t != m)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_store_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in rewind_vcs/store: " + " -> ".join(cycle or [])


def test_the_read_side_does_not_import_the_writer() -> None:
    graph = import_graph()
    for reader in ("session", "index", "resolve", "check"):
        assert "writer" not in graph[reader], reader


def test_repo_is_on_top_and_the_bottom_imports_nothing_above_it() -> None:
    graph = import_graph()
    for m, deps in graph.items():
        assert "repo" not in deps or m in ("remote", "rwfile", "packfile"), f"{m} imports store.repo"
    for bottom in ("records", "refs", "trailers", "lease", "arrivals"):
        assert graph[bottom] <= {"records", "refs"}, (bottom, graph[bottom])


def test_the_checker_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from rewind_vcs.store.b import x\n")
    (tmp_path / "b.py").write_text("def f():\n    from rewind_vcs.store import a\n")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n")
    graph = import_graph(tmp_path)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert find_cycle(graph) in (["a", "b", "a"], ["b", "a", "b"])
