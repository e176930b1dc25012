"""Everything the library raises is a DropCopyError (or a plain TypeError/ValueError for a wrong argument), and
the tree drawn in the errors module's docstring is the real one.

The raise sites are found by walking the package's source: a new ``raise SomethingError(...)`` of a class that
is not under DropCopyError fails here unless it is an internal exception listed below with the reason it never
reaches a caller.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import re
from pathlib import Path

import pytest

import dropcopy_client
from dropcopy_client import errors

PACKAGE = Path(dropcopy_client.__file__).resolve().parent

#: builtins the library may raise: argument checks (a bug in the caller's code, as in the standard library),
#: a missing optional extra, the attribute/mapping protocols, the CLI's exit
ALLOWED_BUILTINS = {
    "TypeError",
    "ValueError",
    "ImportError",
    "AttributeError",
    "KeyError",
    "AssertionError",
    "SystemExit",
}
#: the command line's own: click prints the message and exits with its code
CLICK = {"ClickException", "UsageError", "BadParameter", "Abort", "Exit"}
#: package exceptions that are not DropCopyErrors, and why no caller ever sees one
INTERNAL = {
    "FrameError": "_wire's framing error: the decoder turns it into MessageError/DecodeError, the simulator "
    "into a rejection",
    "_Fail": "the decoder's internal reason, always turned into MessageError or DecodeError",
    "ProtocolError": "the engine pipe's framing error, handled inside the engine process bridge",
    "Failed": "certify's failed check, caught by the scenario runner and written into the report",
}
#: raise sites of builtins that are internal control flow, by file (caught where they are raised)
INTERNAL_SITES = {
    ("testing/_simulator.py", "OSError"): "the simulator's reader loop, caught by the loop",
    ("_client.py", "KeyboardInterrupt"): "a SIGINT no client takes does what Python's default would",
}


def _tree() -> list[tuple[int, str, str | None]]:
    """(depth, class name, builtin in parentheses) for every line of the docstring's drawing."""
    doc = errors.__doc__ or ""
    rows = []
    for line in doc.splitlines():
        match = re.match(r"^    ((?:[│ ] {3}|[├└]── )*)(\w+)(?:\((\w+)\))?", line)
        if match is None or not match.group(2)[0].isupper():
            continue
        prefix = match.group(1)
        rows.append((len(prefix) // 4, match.group(2), match.group(3)))
    return rows


def test_the_docstring_draws_every_exported_exception() -> None:
    drawn = {name for _, name, _ in _tree()}
    assert drawn == set(errors.__all__)


def test_the_drawing_is_the_class_hierarchy() -> None:
    parents: list[str] = []
    for depth, name, builtin in _tree():
        cls = getattr(errors, name)
        del parents[depth:]
        if depth == 0:
            assert cls is errors.DropCopyError
        else:
            parent = getattr(errors, parents[-1])
            assert parent in cls.__bases__, (
                f"{name} is drawn under {parents[-1]}, its bases are {cls.__bases__}"
            )
        if builtin is not None:
            assert issubclass(cls, getattr(builtins, builtin)), f"{name} is drawn as a {builtin}"
        parents.append(name)


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_is_exported_from_the_package_root(name: str) -> None:
    assert getattr(dropcopy_client, name) is getattr(errors, name)
    assert name in dropcopy_client.__all__
    assert issubclass(getattr(errors, name), errors.DropCopyError)


def test_the_exceptions_defined_elsewhere_are_the_same_classes() -> None:
    from dropcopy_client._export import ExportError
    from dropcopy_client._journal import JournalError
    from dropcopy_client.auth import SigningError
    from dropcopy_client.testing import SimulatorError

    assert errors.JournalError is JournalError
    assert errors.SimulatorError is SimulatorError
    assert errors.SigningError is SigningError
    assert errors.ExportError is ExportError


def test_a_logon_timeout_is_still_a_timeout_error() -> None:
    with pytest.raises(TimeoutError) as caught:
        raise errors.LogonTimeout("ABCDEFN:G", 10)
    assert isinstance(caught.value, errors.DropCopyError)
    assert "ABCDEFN:G" in str(caught.value) and "10 s" in str(caught.value)


def _raise_sites() -> list[tuple[str, int, str]]:
    sites = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", None)
            if (name and name[0].isupper()) or name == "_Fail":
                sites.append((str(path.relative_to(PACKAGE)), node.lineno, name))
    return sites


def _resolve(relative: str, name: str) -> type[BaseException] | None:
    module = "dropcopy_client." + relative.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
    value = getattr(importlib.import_module(module), name, None)
    if isinstance(value, type) and issubclass(value, BaseException):
        return value
    return getattr(builtins, name, None)


def test_every_raise_site_raises_a_drop_copy_error() -> None:
    sites = _raise_sites()
    assert len(sites) > 100  # the walk found the package's raise statements
    wrong = []
    for relative, line, name in sites:
        if (
            name in ALLOWED_BUILTINS
            or name in INTERNAL
            or (name in CLICK and relative.startswith("cli/"))
            or (relative, name) in INTERNAL_SITES
        ):
            continue
        cls = _resolve(relative, name)
        assert cls is not None, f"{relative}:{line}: cannot resolve {name}"
        if not issubclass(cls, errors.DropCopyError):
            wrong.append(f"{relative}:{line}: raise {name}")
    assert wrong == []
