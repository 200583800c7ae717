"""The import direction written in docs/ARCHITECTURE.md, enforced with ``ast``.

cli -> analysis / share / integrations / demo -> proxy -> providers -> transfer -> store -> errors

A module may import its own package and anything below it, never above.
Only the CLI prints, parses arguments or reads the environment.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "rewind_vcs"

ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "store": {"errors"},
    "transfer": {"store", "errors"},
    "providers": {"transfer", "store", "errors"},
    "proxy": {"providers", "transfer", "store", "errors"},
    "analysis": {"proxy", "providers", "transfer", "store", "errors"},
    "integrations": {"analysis", "proxy", "providers", "transfer", "store", "errors"},
    "share": {"analysis", "proxy", "providers", "transfer", "store", "errors"},
    "testing": {"proxy", "providers", "transfer", "store", "errors"},
    "demo": {"testing", "proxy", "providers", "transfer", "store", "errors"},
    "cli": {"analysis", "share", "integrations", "demo", "testing", "proxy", "providers", "transfer", "store", "errors"},
}
#: User programs shipped in the package (the demo's agent), which may read env and print.
USER_PROGRAMS = {"demo/research_agent.py"}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return None if rel.stem in ("__init__", "__main__") else rel.stem
    return rel.parts[0]


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def test_every_package_has_a_layer():
    layers = {_layer(p) for p, _ in _modules()} - {None}
    assert layers <= set(ALLOWED), layers - set(ALLOWED)


def test_imports_point_down_only():
    bad = []
    for path, tree in _modules():
        layer = _layer(path)
        if layer is None:
            continue
        for line, mod in _imports(tree):
            parts = mod.split(".")
            if parts[0] != "rewind_vcs" or len(parts) < 2:
                continue
            target = parts[1]
            if target in ("__init__", "__version__") or target == layer:
                continue
            if target not in ALLOWED[layer]:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} ({layer}) imports {mod}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def _outside_main(tree: ast.AST):
    """Nodes not inside a function called main (a module's command-line entry)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "main":
            skip |= {id(n) for n in ast.walk(node)}
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    return [n for n in ast.walk(tree) if id(n) not in skip]


def test_only_the_cli_prints_or_reads_the_environment():
    bad = []
    for path, tree in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        if _layer(path) in ("cli", None) or rel in USER_PROGRAMS:
            continue
        for node in _outside_main(tree):
            text = None
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("print", "input"):
                text = node.func.id + "()"
            elif isinstance(node, ast.Attribute) and ast.unparse(node) in (
                "os.environ", "os.getenv", "sys.argv", "os.environb"
            ):
                text = ast.unparse(node)
            if text:
                bad.append(f"{rel}:{node.lineno} uses {text}")
    assert not bad, "library code must take values as parameters:\n" + "\n".join(bad)
