"""The fenced snippets of a Markdown page, and the HTML comments that say how to run them.

Snippets are ```python, ```bash / ```sh and ```toml blocks (```console and ```text blocks are transcripts of
output, shown not run). A comment on the line right before a block changes how it runs:

* ``<!-- snippet: skip (why) -->`` -- not run; the reason is required and reported by the test;
* ``<!-- snippet: background -->`` or ``<!-- snippet: background (ready: TEXT) -->`` -- a long-running
  program (``client.run()``, ``dropcopy run``, ``dropcopy simulate``): started, waited for until TEXT appears in
  its output (or 5 s, still running), left running while the following shell blocks run, then stopped with
  Ctrl-C (SIGINT) before the next Python block and at the end of the page, and it must exit with status 0.

A bash block runs when every line is a ``dropcopy ...`` command (comments allowed); any other bash block needs
``skip`` with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[ ]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.MULTILINE | re.DOTALL
)
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[\w-]+)\s*(?:\((?P<arg>.*)\))?\s*-->\s*$")
RUN = {"python": "python", "bash": "bash", "sh": "bash", "toml": "toml"}
KINDS = {"skip", "background"}


class SnippetError(ValueError):
    """A page's snippet or marker is malformed (names the file and line)."""


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str  # python, bash or toml
    code: str
    kind: str  # "run", "skip" or "background"
    arg: str | None  # the skip reason, or "ready: TEXT"

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line} ({self.lang})"

    @property
    def ready(self) -> str | None:
        if self.kind == "background" and self.arg and self.arg.startswith("ready:"):
            return self.arg.removeprefix("ready:").strip().strip("\"'")
        return None


def snippets(path: Path) -> list[Snippet]:
    text = path.read_text(encoding="utf-8")
    found: list[Snippet] = []
    previous_end = 0
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = [ln for ln in text[previous_end : match.start()].splitlines() if ln.strip()]
        previous_end = match.end()
        lang = RUN.get(match.group("lang"))
        if lang is None:
            continue
        code = dedent(match.group("body"))
        kind, arg = "run", None
        marker = MARKER.match(before[-1]) if before else None
        if marker is not None:
            kind, arg = marker.group("kind"), marker.group("arg")
            if kind not in KINDS:
                raise SnippetError(
                    f"{path}:{line}: unknown snippet marker {kind!r}; expected one of {sorted(KINDS)}"
                )
            if kind == "skip" and not (arg and arg.strip()):
                raise SnippetError(
                    f"{path}:{line}: a skipped snippet needs its reason: <!-- snippet: skip (why) -->"
                )
        if lang == "bash" and kind != "skip" and not _dropcopy_commands(code):
            raise SnippetError(
                f"{path}:{line}: a bash snippet runs only when every line is a dropcopy command; mark it "
                "<!-- snippet: skip (why) --> otherwise"
            )
        found.append(Snippet(path, line, lang, code, kind, arg))
    return found


def _dropcopy_commands(code: str) -> bool:
    lines = [ln.strip() for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return bool(lines) and all(ln.startswith("dropcopy ") for ln in lines)
