"""Every snippet of docs/guides/sinks.md runs: Python (each in its own interpreter), TOML (loaded), SQL (against
the tables the guide's PostgreSQL example created) and the shell lines (a second real server, started and stopped)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dropcopy_client.config import load_config
from tests.sinks.conftest import PgServer

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "sinks.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(GUIDE.read_text(encoding="utf-8"))]


def test_the_guide_has_snippets_of_every_kind() -> None:
    kinds = [kind for kind, _ in blocks()]
    assert kinds.count("python") >= 5 and {"toml", "sql", "sh"} <= set(kinds)


def test_every_snippet_runs(pg_server: PgServer, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": pg_server.dsn, "PYTHONPATH": str(ROOT)}
    try:
        for index, (kind, code) in enumerate(blocks()):
            where = f"{GUIDE.name} block #{index + 1} ({kind})"
            if kind == "python":
                done = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert done.returncode == 0, f"{where} failed:\n{done.stderr}"
            elif kind == "toml":
                path = tmp_path / "dropcopy.toml"
                path.write_text(code, encoding="utf-8")
                config = load_config(path)
                assert [s.name for s in config.sinks] == ["postgres", "archive"], where
            elif kind == "sql":
                with pg_server.connect() as conn:
                    conn.execute("SET search_path TO dropcopy_guide")
                    for statement in filter(str.strip, code.split(";")):
                        lines = [line for line in statement.splitlines() if not line.startswith("--")]
                        conn.execute("\n".join(lines)).fetchall()
            elif kind == "sh":
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", code],
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 0, f"{where} failed:\n{done.stderr}"
                assert "PostgreSQL 1" in done.stdout, where
            else:
                raise AssertionError(f"{where}: no runner for {kind!r} blocks")
    finally:
        with pg_server.connect() as conn:
            conn.execute("DROP SCHEMA IF EXISTS dropcopy_guide CASCADE")
