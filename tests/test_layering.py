"""The architecture, checked from the source: arrows only point down and no module
cycle exists, not even through an import hidden inside a function.

Layers (lowest first): ``code_foundation`` ← ``rust_core`` ← ``chaos``, ``loadtest`` ←
``workflows`` ← ``activities`` ← ``workers``. A module may import its own layer's
package and any lower layer; ``chaos`` and ``loadtest`` are peers that do not import
each other. Imports are read with :mod:`ast` (every ``import``/``from`` anywhere in
the file, relative ones resolved); imports under ``if TYPE_CHECKING:`` count for the
layering but not for cycles, since they never run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {
    "code_foundation": 0,
    "rust_core": 1,
    "chaos": 2,
    "loadtest": 2,
    "workflows": 3,
    "activities": 4,
    "workers": 5,
}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    line: int
    runtime: bool


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_files(root: Path = ROOT) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in LAYER:
        for path in sorted((root / pkg).rglob("*.py")):
            if "target" in path.relative_to(root).parts:
                continue
            out[module_name(path, root)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
            if name == "TYPE_CHECKING":
                for sub in node.body:
                    for inner in ast.walk(sub):
                        if hasattr(inner, "lineno"):
                            lines.add(inner.lineno)
    return lines


def _resolve(target: str, modules: dict[str, Path]) -> str | None:
    """The project module ``target`` names (the longest known prefix), if any."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in modules:
            return name
        parts.pop()
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    typing_only = _type_checking_lines(tree)
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" for a in node.names] or [mod]
        for t in targets:
            dst = _resolve(t, modules)
            if dst is not None and dst != name:
                yield Edge(name, dst, node.lineno, node.lineno not in typing_only)


def all_edges(root: Path = ROOT) -> list[Edge]:
    modules = package_files(root)
    return [e for name, path in modules.items() for e in imports_of(name, path, modules)]


def layering_violations(edges: list[Edge]) -> list[str]:
    bad = []
    for e in edges:
        a, b = e.src.split(".")[0], e.dst.split(".")[0]
        if a == b:
            continue
        if LAYER[b] > LAYER[a] or (LAYER[b] == LAYER[a]):
            bad.append(f"{e.src} (line {e.line}) imports {e.dst}: {a} may not import {b}")
    return bad


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), runtime edges only."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.runtime:
            graph.setdefault(e.src, set()).add(e.dst)
            graph.setdefault(e.dst, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_arrows_point_down() -> None:
    bad = layering_violations(all_edges())
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_no_import_cycles() -> None:
    found = cycles(all_edges())
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_check_catches_a_planted_violation(tmp_path: Path) -> None:
    """The checker itself can fail: an upward import and a hidden cycle are both found."""
    for pkg in LAYER:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "chaos" / "bad.py").write_text("def f():\n    from workflows import spec\n")
    (tmp_path / "workflows" / "spec.py").write_text("from . import other\n")
    (tmp_path / "workflows" / "other.py").write_text("def g():\n    from workflows.spec import x\n")
    edges = all_edges(tmp_path)
    assert any("chaos.bad" in v and "workflows" in v for v in layering_violations(edges))
    assert ["workflows.other", "workflows.spec"] in cycles(edges)


@pytest.mark.parametrize("pkg", sorted(LAYER))
def test_every_package_has_a_docstring(pkg: str) -> None:
    init = ROOT / pkg / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), (
        f"{init} has no docstring"
    )
