"""A real PostgreSQL server for the sink tests: started once per test session by scripts/pg-test-server,
stopped at the end. It never skips: a machine that cannot run it fails these tests, loudly, saying why.

Each test gets its own schema (``pg_schema``), dropped afterwards, so tests do not see each other's rows.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import attrs
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg-test-server"


@attrs.frozen
class PgServer:
    directory: str
    dsn: str

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn, autocommit=True)

    @property
    def password(self) -> str:
        password = conninfo_to_dict(self.dsn).get("password")
        assert isinstance(password, str)
        return password

    def dsn_for(self, user: str, password: str) -> str:
        """A DSN for the same server as another role."""
        params = conninfo_to_dict(self.dsn)
        return f"postgresql://{user}:{password}@{params['host']}:{params['port']}/{params['dbname']}"


@attrs.frozen
class PgSchema:
    server: PgServer
    name: str

    @property
    def dsn(self) -> str:
        return self.server.dsn

    def query(self, text: str, *params: object) -> list[tuple[object, ...]]:
        """Rows of ``text``, with ``{s}`` replaced by this schema's quoted name."""
        with self.server.connect() as conn:
            return conn.execute(self._sql(text), params or None).fetchall()

    def run(self, *statements: str) -> None:
        """Statements without results, one after the other (``{s}`` as in :meth:`query`)."""
        with self.server.connect() as conn:
            for text in statements:
                conn.execute(self._sql(text))

    def _sql(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=sql.Identifier(self.name))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        done = subprocess.run(
            [str(SCRIPT), "start", "--fast", "--owner", str(os.getpid())],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"cannot run {SCRIPT} start: {exc}", pytrace=False)
    if done.returncode != 0:
        pytest.fail(
            f"the PostgreSQL test server did not start ({SCRIPT} start exited {done.returncode}):\n"
            f"{done.stderr.strip()}\nInstall it with `make pg-server` (as root: apt-get install postgresql).",
            pytrace=False,
        )
    values = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    server = PgServer(values["PGTEST_DIR"], values["PGTEST_DSN"])
    try:
        yield server
    finally:
        subprocess.run([str(SCRIPT), "stop", server.directory], timeout=120, check=False)


@pytest.fixture
def pg_schema(pg_server: PgServer) -> Iterator[PgSchema]:
    schema = PgSchema(pg_server, f"t_{uuid.uuid4().hex[:12]}")
    try:
        yield schema
    finally:
        with pg_server.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema.name)))
