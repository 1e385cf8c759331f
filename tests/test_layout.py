"""The layering bars of issue 21, checked on the source (AST only: fast, nothing is imported).

- ``models/`` and ``features/`` import nothing of ``exportcast/`` (errors live on the lowest floor
  that raises them: :mod:`features.errors`, :mod:`models.errors`).
- No import cycle between the project's modules.
- No function over 80 lines in ``exportcast/``, ``features/``, ``models/`` or ``flows/``.

Each checker takes a root folder, so each test also runs it on a small tree that breaks the
rule, to show the check can fail.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("exportcast", "features", "models", "flows", "benchmarks")
LONG_FUNCTION_PACKAGES = ("exportcast", "features", "models", "flows")
MAX_FUNCTION_LINES = 80


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the given top-level packages."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterator[str]:
    """Every dotted name imported by a module (at any depth: a lazy import is an import too).
    ``from a.b import c`` yields ``a.b.c`` and ``a.b``: the caller keeps the ones that are modules."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (the nearest existing module of each name)."""
    modules = _modules(root, packages)
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            target = name
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module and name.split(".")[0] in packages:
                if target in modules and not module.startswith(f"{target}."):  # a package's own children
                    graph[module].add(target)
    return graph


def import_cycle(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """One import cycle (``[a, b, a]``: a imports b imports a), or ``[]`` if there is none."""
    try:
        graphlib.TopologicalSorter(import_graph(root, packages)).prepare()
    except graphlib.CycleError as cycle:
        return list(cycle.args[1])
    return []


def imports_of(root: Path, packages: tuple[str, ...], forbidden: str) -> list[str]:
    """``file:line name`` of every import of ``forbidden`` (or a module under it) in the packages."""
    found = []
    for path in _modules(root, packages).values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name == forbidden or name.startswith(f"{forbidden}."):
                    found.append(f"{path.relative_to(root).as_posix()}:{node.lineno} {name}")
    return found


def long_functions(root: Path, packages: tuple[str, ...], limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``file::function`` -> lines (``def`` to the last line, docstring included) over ``limit``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > limit:
                        found[f"{path.relative_to(root).as_posix()}::{node.name}"] = lines
    return found


# --------------------------------------------------------------------------- the bars
def test_models_and_features_import_nothing_of_exportcast():
    assert imports_of(ROOT, ("models", "features"), "exportcast") == []


def test_features_import_nothing_of_models_or_flows():
    assert imports_of(ROOT, ("features",), "models") + imports_of(ROOT, ("features",), "flows") == []


def test_models_import_nothing_of_flows():
    assert imports_of(ROOT, ("models",), "flows") == []


def test_no_import_cycle():
    assert import_cycle(ROOT) == []


def test_no_function_over_80_lines():
    over = long_functions(ROOT, LONG_FUNCTION_PACKAGES)
    assert over == {}


# --------------------------------------------------------------------------- the checks can fail
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_an_import_of_exportcast_is_found(tmp_path):
    root = _tree(
        tmp_path,
        {
            "models/__init__.py": "",
            "models/core/engine.py": "import json\n\n\ndef f():\n    from exportcast.errors import X\n",
            "features/contract.py": "import exportcast\nfrom features import errors\n",
        },
    )
    assert imports_of(root, ("models", "features"), "exportcast") == [
        "models/core/engine.py:5 exportcast.errors",
        "features/contract.py:1 exportcast",
    ]


def test_an_import_cycle_is_found(tmp_path):
    root = _tree(
        tmp_path,
        {
            "features/__init__.py": "",
            "features/a.py": "from features.b import helper\n",
            "features/b.py": "def f():\n    from features import a\n",  # a lazy import closes it too
            "features/c.py": "from features import a\n",
        },
    )
    assert sorted(import_cycle(root)[:2]) == ["features.a", "features.b"]
    assert import_cycle(root)[0] == import_cycle(root)[-1]
    (root / "features/b.py").write_text("def helper():\n    pass\n", encoding="utf-8")
    assert import_cycle(root) == []
    _tree(
        root, {"models/__init__.py": "", "models/x.py": "from . import y\n", "models/y.py": "from models.x import t\n"}
    )
    assert sorted(import_cycle(root)[:2]) == ["models.x", "models.y"]


@pytest.mark.parametrize("lines, expected", [(80, {}), (81, {"flows/long.py::step": 81})])
def test_a_function_over_80_lines_is_found(tmp_path, lines, expected):
    body = "".join(f"    x{i} = {i}\n" for i in range(lines - 1))
    root = _tree(tmp_path, {"flows/long.py": f"def step():\n{body}"})
    assert long_functions(root, ("flows",)) == expected
