"""The layout's promises, read from the source: which package may import which, and no cycles.

Imports are read with `ast` (every `import`, also those inside functions), so a lazy import
counts as a dependency as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analytics_pipeline", "analytics_sandbox")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


MODULES = _modules()


def _imported_names(path: Path) -> Iterator[str]:
    """Absolute names of every module (or module member) `path` imports."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _module_name(path if path.name == "__init__.py" else path.parent)
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _project_imports(module: str) -> set[str]:
    """The project modules `module` imports (a member import counts as its module)."""
    return {
        name
        for name in _imported_names(MODULES[module])
        if name in MODULES and name != module and not module.startswith(f"{name}.")
    }


GRAPH = {module: _project_imports(module) for module in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        module, path = stack.pop()
        for imported in GRAPH[module]:
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None


def test_the_import_graph_has_no_cycle() -> None:
    cycles = [cycle for module in GRAPH if (cycle := _cycle_from(module))]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("analytics_pipeline.warehouse", "analytics_pipeline.platforms"),
        ("analytics_pipeline.platforms", "analytics_pipeline.warehouse"),
        ("analytics_pipeline", "analytics_sandbox"),
        ("analytics_pipeline.platforms", "analytics_pipeline.defs"),
        ("analytics_pipeline.warehouse", "analytics_pipeline.defs"),
        ("analytics_pipeline.ingest", "analytics_pipeline.defs"),
    ],
)
def test_a_package_does_not_import_what_it_must_not(importer: str, forbidden: str) -> None:
    offenders = {
        f"{module} -> {name}"
        for module in MODULES
        if module == importer or module.startswith(f"{importer}.")
        for name in _imported_names(MODULES[module])
        if name == forbidden or name.startswith(f"{forbidden}.")
    }
    assert not offenders


def test_only_defs_and_definitions_import_dagster() -> None:
    allowed = ("analytics_pipeline.defs", "analytics_pipeline.definitions")
    offenders = {
        module
        for module in MODULES
        if not module.startswith(allowed)
        for name in _imported_names(MODULES[module])
        if name == "dagster" or name.startswith("dagster.")
    }
    assert not offenders


def test_the_check_sees_imports_it_must_forbid(tmp_path: Path) -> None:
    """The reader finds a lazy import inside a function: the checks above can fail."""
    source = tmp_path / "sample.py"
    source.write_text("def f():\n    from analytics_pipeline.platforms import base\n")
    assert "analytics_pipeline.platforms.base" in set(_imported_names(source))
