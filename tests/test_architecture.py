"""The package's layers point one way: every package has a layer and imports only lower ones, and no
module import cycle exists (docs/architecture.md, "Layers").

Imports are read from the source (``ast``), function-level ones included, since a late import is
still a dependency; the lazy exports of package ``__init__`` files are names, not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import medswin

ROOT = Path(medswin.__file__).parent
PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "napari_medswin"

#: each package's layer (docs/architecture.md): a module may import its own package and packages of
#: a lower layer only; two packages of one layer know nothing of each other (the foundation's
#: modules, layer 0, may use each other).
LAYERS: dict[str, int] = {
    # the foundation: the package root (version, lazy names), errors, files, shared helpers
    "medswin": 0,
    "medswin._lazy": 0,
    "medswin._schema": 0,
    "medswin.errors": 0,
    "medswin.files": 0,
    "medswin.typing": 0,
    "medswin.distributed": 0,
    "medswin.io": 1,
    "medswin.models": 2,
    "medswin.transforms": 3,
    "medswin.weights": 3,
    "medswin.qc": 4,
    "medswin.pacs": 4,
    "medswin.metrics": 5,
    "medswin.inference": 5,
    "medswin.data": 5,
    "medswin.batch": 6,
    # front ends
    "medswin.training": 7,
    "medswin.challenges": 7,
    "medswin.cli": 8,
    "napari_medswin": 8,
    "medswin.demo": 9,
    "medswin.__main__": 9,
}


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for root in (ROOT, PLUGIN):
        for path in root.rglob("*.py"):
            name = _module_name(path, root)
            found: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module)
                elif isinstance(node, ast.Import):
                    found.update(alias.name for alias in node.names)
            graph[name] = {m for m in found if m.split(".")[0] in ("medswin", "napari_medswin") and m != name}
    return graph


def _package(module: str) -> str:
    """The entry of :data:`LAYERS` a module belongs to (its longest matching prefix)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in LAYERS:
            return ".".join(parts[:end])
    raise AssertionError(f"{module}: no layer in LAYERS (add its package there and to docs/architecture.md)")


def test_every_package_has_a_layer() -> None:
    graph = _imports()
    assert "medswin.batch.runner" in graph and "napari_medswin._segment_widget" in graph  # the scan sees them
    for module in graph:
        _package(module)
    for package in LAYERS:  # and no layer names a package that is gone
        assert any(m == package or m.startswith(package + ".") for m in graph), package


def _wrong_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each import in ``graph`` of the same or a higher layer's package, as a line."""
    return sorted(
        f"{module} (layer {LAYERS[_package(module)]}) imports {target} (layer {LAYERS[_package(target)]})"
        for module, targets in graph.items()
        for target in targets
        if _package(target) != _package(module)
        and LAYERS[_package(target)] >= LAYERS[_package(module)]
        and LAYERS[_package(module)] > 0  # the foundation's modules are one layer (cycles: below)
    )


def test_packages_import_only_lower_layers() -> None:
    wrong = _wrong_imports(_imports())
    assert not wrong, "\n".join(wrong)


def test_the_rule_refuses_the_imports_it_is_for() -> None:
    """resolve_model's old import of the weights registry, a library package importing a front end, and
    two packages of one layer are refused; the way down is not."""
    assert _wrong_imports(
        {
            "medswin.models.resolve": {"medswin.weights"},
            "medswin.batch.runner": {"medswin.cli.main"},
            "medswin.qc.assess": {"medswin.pacs.nodes"},
            "medswin.weights.lookup": {"medswin.models.resolve", "medswin.files", "medswin"},
        }
    ) == [
        "medswin.batch.runner (layer 6) imports medswin.cli.main (layer 8)",
        "medswin.models.resolve (layer 2) imports medswin.weights (layer 3)",
        "medswin.qc.assess (layer 4) imports medswin.pacs.nodes (layer 4)",
    ]


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
