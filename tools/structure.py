"""Figures about the package's structure, for reviews of a refactor.

    python tools/structure.py [PACKAGE_DIR]      # default: asyncrpc

Prints, per module and in total:

* lines;
* cross-module private accesses: ``obj._name`` (or ``from m import _name``)
  where ``_name`` is a private member defined in another asyncrpc module and
  not in this one, split into reads/calls and writes (assignments);
* ``type: ignore`` comments;
* import cycles between asyncrpc modules: runtime imports (module level or
  inside functions), and separately with ``if TYPE_CHECKING:`` imports too.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _defined_private_names(tree: ast.Module) -> set[str]:
    """Private names a module defines: module-level names, class members, self._x fields, slots."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and _private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"} and _private(node.attr):
                names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and _private(node.id):
            names.add(node.id)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "__slots__":
                    slots = [e.value for e in ast.walk(node.value) if isinstance(e, ast.Constant)]
                    names.update(v for v in slots if isinstance(v, str) and _private(v))
    return names


class _Imports(ast.NodeVisitor):
    def __init__(self, module: str, package: str) -> None:
        self.module = module
        self.package = package
        self.runtime: set[str] = set()
        self.typing_only: set[str] = set()
        self.private_from: list[tuple[str, str, int]] = []
        self._in_type_checking = False

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        is_tc = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
        )
        if is_tc:
            old, self._in_type_checking = self._in_type_checking, True
            for child in node.body:
                self.visit(child)
            self._in_type_checking = old
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _add(self, target: str) -> None:
        if target == self.package or target.startswith(self.package + "."):
            (self.typing_only if self._in_type_checking else self.runtime).add(target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parts = self.module.split(".")[: -node.level]
            base = ".".join([*parts, base] if base else parts)
        self._add(base)
        for alias in node.names:
            # "from package import submodule" imports that submodule.
            self._add(f"{base}.{alias.name}")
            if _private(alias.name) and base.startswith(self.package):
                self.private_from.append((base, alias.name, node.lineno))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
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
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "asyncrpc").resolve()
    package = root.name
    files = sorted(root.rglob("*.py"))
    trees = {_module_name(root, f): (f, ast.parse(f.read_text(), str(f))) for f in files}
    defined = {name: _defined_private_names(tree) for name, (_, tree) in trees.items()}
    known = set(trees)

    total_lines = total_reads = total_writes = total_ignores = 0
    runtime: dict[str, set[str]] = defaultdict(set)
    typing_too: dict[str, set[str]] = defaultdict(set)
    rows = []
    for name, (path, tree) in trees.items():
        text = path.read_text()
        lines = text.count("\n")
        ignores = text.count("type: ignore")
        mine = defined[name]
        elsewhere = set().union(*(d for other, d in defined.items() if other != name)) - mine
        reads = writes = 0
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr) and node.attr in elsewhere:
                if isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}:
                    continue
                if isinstance(node.ctx, ast.Store | ast.Del):
                    writes += 1
                else:
                    reads += 1
        imports = _Imports(name, package)
        imports.visit(tree)
        reads += len(imports.private_from)
        for target in imports.runtime:
            if target in known and target != name:
                runtime[name].add(target)
                typing_too[name].add(target)
        for target in imports.typing_only:
            if target in known and target != name:
                typing_too[name].add(target)
        rows.append((name, lines, reads, writes, ignores))
        total_lines += lines
        total_reads += reads
        total_writes += writes
        total_ignores += ignores

    print(f"{'module':<36} {'lines':>6} {'priv.reads':>10} {'priv.writes':>11} {'ignores':>8}")
    for name, lines, reads, writes, ignores in sorted(rows):
        print(f"{name:<36} {lines:>6} {reads:>10} {writes:>11} {ignores:>8}")
    print(f"{'total':<36} {total_lines:>6} {total_reads:>10} {total_writes:>11} {total_ignores:>8}")
    # A package's __init__ importing its submodules is not a cycle worth counting.
    for graph in (runtime, typing_too):
        for v in list(graph):
            graph[v] = {w for w in graph[v] if not v.startswith(w + ".") and w != package}
    run_cycles = _cycles(runtime)
    all_cycles = _cycles(typing_too)
    print(f"import cycles (runtime imports): {len(run_cycles)}")
    for component in run_cycles:
        print("  " + " <-> ".join(component))
    print(f"import cycles (with TYPE_CHECKING imports): {len(all_cycles)}")
    for component in all_cycles:
        print("  " + " <-> ".join(component))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
