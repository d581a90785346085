"""The package's layers point one way: no import cycles, and no library module imports a front end.

Imports are read from the source (``ast``), function-level ones included, since a late import is
still a dependency; the lazy exports of package ``__init__`` files are names, not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import medswin

ROOT = Path(medswin.__file__).parent
#: library packages (docs/architecture.md's stages) that must not know any front end.
LIBRARY = (
    "medswin.io",
    "medswin.models",
    "medswin.metrics",
    "medswin.transforms",
    "medswin.inference",
    "medswin.pacs",
    "medswin.qc",
)
FRONT_ENDS = ("medswin.cli", "napari_medswin", "medswin.training", "medswin.challenges")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {m for m in found if m.split(".")[0] in ("medswin", "napari_medswin") and m != name}
    return graph


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_library_modules_import_no_front_end() -> None:
    wrong = {
        (module, target)
        for module, targets in _imports().items()
        if _within(module, LIBRARY)
        for target in targets
        if _within(target, FRONT_ENDS)
    }
    assert not wrong


def test_no_import_cycles() -> None:
    graph = _imports()
    # an edge to a package means its __init__; edges to modules the tree lacks (e.g. optional) are dropped
    graph = {m: {t for t in targets if t in graph} for m, targets in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)
