"""The import rule is the architecture: only dropcopy_client._engine may import quickfix."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "dropcopy_client"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_quickfix_is_imported_only_by_the_engine_package() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "quickfix" in _imports(path) and path.parent.name != "_engine"
    ]
    assert offenders == []


def test_the_engine_package_does_import_quickfix() -> None:
    # guards the test above against silently passing because the scan found nothing
    assert any("quickfix" in _imports(p) for p in (PACKAGE / "_engine").glob("*.py"))


def test_wire_layer_imports_nothing_above_it() -> None:
    for path in (PACKAGE / "_wire").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("dropcopy_client.")
            ):
                assert node.module.startswith("dropcopy_client._wire"), f"{path.name} imports {node.module}"
