"""The package's imports go one way: every module imports only from its own layer or lower ones, and no
import circle exists between modules (issue 13).

Layers, lowest first (a module may import from its own layer and any lower one):

====  ==========================  ===============================================================================
rank  layer                       modules
====  ==========================  ===============================================================================
0     base                        omnilab.errors, omnilab.enums, omnilab._checks, omnilab._text,
                                  omnilab._version
1     config                      omnilab.config
2     sql                         omnilab.sql.* (every table, omnilab's own included; migrations)
3     stores                      omnilab.vectors.*, omnilab.sessions.* (these two never import each other)
4     analysis and sample data    omnilab.analysis.*, omnilab.sample.* (stdlib corpus, generator, loader,
                                  the platform-shaped sample database ``omnilab.sample.platform``)
5     lab                         omnilab.lab
6     entry points                omnilab (``__init__``), omnilab.cli, omnilab.integrations.*, and
                                  omnilab.analysis.app (the Voila app script: it opens a lab, like the CLI)
====  ==========================  ===============================================================================

Imports are read with ``ast`` from the source: module-level ones, those inside functions (lazy imports)
and those under ``if TYPE_CHECKING`` (a type-only import is still a dependency of the design), absolute and
relative. ``from pkg import name`` is an import of the submodule ``pkg.name`` when that module exists, of
``pkg`` otherwise. Importing a submodule also runs its parent packages' ``__init__``; those implicit edges
are not counted (every module would otherwise "import" ``omnilab/__init__``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import omnilab

ROOT = Path(omnilab.__file__).resolve().parent

#: (rank, layer name, module prefixes); a module belongs to the entry with the longest matching prefix
LAYERS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (0, "base", ("omnilab.errors", "omnilab.enums", "omnilab._checks", "omnilab._text", "omnilab._version")),
    (1, "config", ("omnilab.config",)),
    (2, "sql", ("omnilab.sql",)),
    (3, "vectors", ("omnilab.vectors",)),
    (3, "sessions", ("omnilab.sessions",)),
    (4, "analysis", ("omnilab.analysis",)),
    (4, "sample", ("omnilab.sample",)),
    (5, "lab", ("omnilab.lab",)),
    (6, "entry", ("omnilab", "omnilab.cli", "omnilab.integrations", "omnilab.analysis.app")),
)

#: layers of one rank that must not import each other (each stands on its own)
SEPARATE = {frozenset({"vectors", "sessions"})}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer_of(module: str) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None  # (prefix length, rank, name)
    for rank, name, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), rank, name)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best[1], best[2]


def _resolve(target: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``target`` names or lies in (None outside omnilab)."""
    parts = target.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in known:
            return name
    return None


def imports_of(module: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported omnilab module, line) for every import statement anywhere in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found = _resolve(alias.name, known)
                if found:
                    yield found, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found = sub if sub in known else _resolve(base, known)
                if found:
                    yield found, node.lineno


def graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}; only edges between distinct omnilab modules."""
    known = modules()
    out: dict[str, dict[str, int]] = {}
    for module, path in known.items():
        edges: dict[str, int] = {}
        for target, line in imports_of(module, path, known):
            if target != module:
                edges.setdefault(target, line)
        out[module] = edges
    return out


def layer_violations(g: dict[str, dict[str, int]]) -> list[str]:
    bad = []
    for src, edges in sorted(g.items()):
        rank, name = layer_of(src)
        for dst, line in sorted(edges.items()):
            drank, dname = layer_of(dst)
            if drank > rank:
                bad.append(
                    f"{src} (layer {name}, rank {rank}) imports {dst} (layer {dname}, rank {drank}) at line {line}"
                )
            elif name != dname and frozenset({name, dname}) in SEPARATE:
                bad.append(f"{src} ({name}) imports {dst} ({dname}) at line {line}: these layers stand apart")
    return bad


def cycles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """The circles among modules: for every module of a strongly connected component (Tarjan) larger than one
    module, the shortest circle through it; each circle once, starting at its smallest module name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    found: dict[tuple[str, ...], None] = {}
    for comp in components:
        for start in comp:
            circle = _shortest_circle(g, set(comp), start)[:-1]
            i = circle.index(min(circle))
            found.setdefault(tuple(circle[i:] + circle[:i] + [circle[i]]))
    return [list(c) for c in found]


def _shortest_circle(g: dict[str, dict[str, int]], members: set[str], start: str) -> list[str]:
    """The shortest path from ``start`` back to itself within ``members`` (breadth first)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(g.get(v, {})):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is on no circle within {sorted(members)}")


def test_every_module_has_a_layer():
    for module in modules():
        layer_of(module)


def test_imports_follow_the_layer_order():
    bad = layer_violations(graph())
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_no_import_circles():
    found = cycles(graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_checker_sees_lazy_relative_and_type_only_imports(tmp_path):
    """The checker itself: a function-level import, a relative import and a TYPE_CHECKING import all count,
    and a planted circle is reported with its path."""
    pkg = tmp_path / "omnilab"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("def f():\n    from . import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from omnilab.sub.c import X\n"
    )
    (pkg / "sub" / "c.py").write_text("from .. import sub\nfrom ..sub.a import f\n")
    known = {module_name_under(tmp_path, p): p for p in sorted(pkg.rglob("*.py"))}
    g = {m: {t: line for t, line in imports_of(m, p, known) if t != m} for m, p in known.items()}
    assert g["omnilab.sub.a"] == {"omnilab.sub.b": 2}
    assert g["omnilab.sub.b"] == {"omnilab.sub.c": 3}
    assert g["omnilab.sub.c"] == {"omnilab.sub": 1, "omnilab.sub.a": 2}
    assert cycles(g) == [["omnilab.sub.a", "omnilab.sub.b", "omnilab.sub.c", "omnilab.sub.a"]]
    assert layer_of("omnilab.analysis.app") == (6, "entry") and layer_of("omnilab.analysis.tuning")[0] == 4
    upward = {"omnilab.sql.x": {"omnilab.vectors.y": 3}, "omnilab.vectors.y": {"omnilab.sessions.z": 1}}
    assert len(layer_violations(upward)) == 2


def module_name_under(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)
