"""The API reference (mkdocs + mkdocstrings, docs/api/*.md) builds with --strict and documents every public name:
everything in ``dropcopy_client.__all__`` and in the public modules' ``__all__``."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import dropcopy_client

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("sinks", "testing", "auth", "positions", "config", "errors")


@pytest.fixture(scope="module")
def anchors(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    site = tmp_path_factory.mktemp("site")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or "mkdocs"
    done = subprocess.run(
        [mkdocs, "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    found: set[str] = set()
    for page in (site / "api").rglob("*.html"):
        found |= set(re.findall(r'id="(dropcopy_client[\w.]*)"', page.read_text(encoding="utf-8")))
    return found


def _public(module_name: str) -> list[str]:
    module = importlib.import_module(f"dropcopy_client.{module_name}")
    names = getattr(module, "__all__", None)
    if names is None:  # config: every public class and function defined there
        names = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__ and callable(v)
        ]
    return sorted(names)


def test_every_name_of_the_package_root_is_documented(anchors: set[str]) -> None:
    missing = [
        name
        for name in dropcopy_client.__all__
        if f"dropcopy_client.{name}" not in anchors
        and not any(a.startswith("dropcopy_client.") and a.endswith(f".{name}") for a in anchors)
    ]
    assert missing == [], f"add these to a docs/api/*.md page: {missing}"


@pytest.mark.parametrize("module", MODULES)
def test_every_name_of_each_public_module_is_documented(anchors: set[str], module: str) -> None:
    missing = [
        name
        for name in _public(module)
        if f"dropcopy_client.{module}.{name}" not in anchors and f"dropcopy_client.{name}" not in anchors
    ]
    assert missing == [], f"dropcopy_client.{module}: not in the API reference: {missing}"
