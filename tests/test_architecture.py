"""The architecture, checked from the source (``ast``, nothing imported): modules import only
their own layer or earlier ones in the data flow, no import cycle, short functions, short files.

Layers, lower = earlier in the flow of ``proxyds build`` (docs/architecture.md):

0. the package itself and its leaves: config, errors, registry, progress, recipe
1. the ends of the flow: sources (read), spaces (models), sinks (write)
2. pure selection cores and what users read back: selection, presets, manifest, sampler
3. the build pipeline
4. the two other jobs, built on the pipeline: harness (evaluate), verifier (verify)
5. the command line
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "proxyds"

LAYERS = {
    0: ["proxyds", "proxyds.config", "proxyds.errors", "proxyds.registry", "proxyds.progress", "proxyds.recipe"],
    1: ["proxyds.sources", "proxyds.sources.*", "proxyds.spaces", "proxyds.spaces.*", "proxyds.sinks", "proxyds.sinks.*"],
    2: ["proxyds.selection", "proxyds.selection.*", "proxyds.presets", "proxyds.manifest", "proxyds.sampler",
        "proxyds.info"],
    3: ["proxyds.pipeline", "proxyds.pipeline.*"],
    4: ["proxyds.harness", "proxyds.harness.*", "proxyds.verifier", "proxyds.verifier.*"],
    5: ["proxyds.cli", "proxyds.cli_*", "proxyds.__main__"],
}
MAX_FUNCTION_LINES = 60
MAX_FILE_LINES = 400


@dataclass(frozen=True)
class Import:
    """One import of a proxyds module: who imports what, where, and whether it runs at import time."""

    source: str
    target: str
    path: str
    line: int
    module_level: bool


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _layer(module: str) -> int | None:
    for layer, patterns in LAYERS.items():
        if any(fnmatchcase(module, p) for p in patterns):
            return layer
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module):
    """(node, module_level) for every import statement; module level = runs when the module is
    imported: top-level statements, inside top-level if/try/with/class bodies, but not under
    ``if TYPE_CHECKING:`` and not inside functions."""
    def walk(nodes, module_level):
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node, module_level
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                yield from walk(ast.iter_child_nodes(node), False)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from walk(node.body, False)
                yield from walk(node.orelse, module_level)
            else:
                yield from walk(ast.iter_child_nodes(node), module_level)

    yield from walk(tree.body, True)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The proxyds modules one import statement loads (``from pkg import sub`` -> ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "proxyds"]
    if node.level:  # relative: resolved against the importing module's package
        package = module if _is_package(module) else module.rpartition(".")[0]
        base = package.split(".")
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    if origin.split(".")[0] != "proxyds":
        return []
    subs = [f"{origin}.{a.name}" for a in node.names if f"{origin}.{a.name}" in MODULES]
    names = [a.name for a in node.names if f"{origin}.{a.name}" not in MODULES]
    return subs + ([origin] if names else [])


def _imports() -> list[Import]:
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, module_level in _import_nodes(tree):
            for target in _targets(module, node):
                found.append(Import(module, target, path.relative_to(ROOT).as_posix(), node.lineno, module_level))
    return found


IMPORTS = _imports()


def test_every_module_has_a_layer_and_every_import_exists():
    unmapped = [m for m in MODULES if _layer(m) is None]
    assert not unmapped, f"modules in no layer: {unmapped}; add each to a layer in LAYERS ({__file__})"
    missing = [f"{i.path}:{i.line} imports {i.target}" for i in IMPORTS if i.target not in MODULES]
    assert not missing, "imports of proxyds modules that do not exist:\n" + "\n".join(missing)


def test_no_module_imports_a_later_layer():
    upward = [
        f"{i.path}:{i.line} {i.source} (layer {_layer(i.source)}) imports {i.target} (layer {_layer(i.target)})"
        for i in IMPORTS
        if i.target in MODULES and _layer(i.source) is not None and _layer(i.target) is not None
        and _layer(i.target) > _layer(i.source)
    ]
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), or a module importing itself."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def _cycle_path(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through the component's first module (breadth-first, shortest)."""
    start, members = component[0], set(component)
    previous, queue = {start: None}, [start]
    for v in queue:
        for w in sorted(edges.get(v, ()) & members):
            if w == start:
                path = [v]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    return component


def test_no_import_cycle():
    module_level = [i for i in IMPORTS if i.module_level and i.target in MODULES]
    edges: dict[str, set[str]] = {}
    for i in module_level:
        edges.setdefault(i.source, set()).add(i.target)
    where = {(i.source, i.target): f"{i.path}:{i.line}" for i in module_level}
    reports = []
    for component in _cycles(edges):
        path = _cycle_path(component, edges)
        steps = [f"  {a} -> {b} ({where[a, b]})" for a, b in zip(path, path[1:])]
        reports.append(" -> ".join(path) + "\n" + "\n".join(steps))
    assert not reports, "import cycles (module-level imports):\n" + "\n".join(reports)


def _functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def _long_functions() -> list[str]:
    long = []
    for path in MODULES.values():
        rel = path.relative_to(ROOT).as_posix()
        for name, node in _functions(ast.parse(path.read_text(), filename=str(path))):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                long.append(f"{rel}:{name} (line {node.lineno}, {length} lines)")
    return long


def test_no_function_over_60_lines():
    long = _long_functions()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_no_file_over_400_lines():
    files = [p for folder in ("proxyds", "tests", "tools", "examples") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert files
    long = [f"{p.relative_to(ROOT).as_posix()} ({n} lines)" for p in files
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, f"files over {MAX_FILE_LINES} lines:\n" + "\n".join(long)
