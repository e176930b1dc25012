"""Every snippet of README.md and docs/ runs, against the simulator on 127.0.0.1 (markers: tests/docs/snippets.py).

Each page gets a directory of its own, as a reader's would be: ``keys.txt`` (a generated key), ``dropcopy.toml``
(data_dir ``var/dropcopy``, one CGW target ``ABCDEFN`` on a free loopback port), ``dropcopy simulate`` serving it,
and a journal that already holds the demo's trading session. Python blocks run each in a fresh interpreter,
bash blocks through bash, TOML blocks are loaded. Every process is stopped in teardown.

docs/quickstart.md has a test of its own that also checks what the commands print. Skipped snippets are
reported with their reasons (``pytest -ra`` lists them).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dropcopy_client import DropCopyClient
from dropcopy_client.auth import generate_key, write_key_file
from dropcopy_client.config import load_config
from tests.docs.snippets import Snippet, SnippetError, snippets

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: pages whose snippets another test runs, or that are not this test's to mark, and why
ELSEWHERE = {
    "docs/guides/sinks.md": "run by tests/sinks/test_sinks_doc.py against a real PostgreSQL server",
    "docs/performance.md": "quotes the engine's source code (excerpts, not programs); owned by the performance page",
    "docs/quickstart.md": "run by test_the_quickstart_runs_in_order, which also checks what each command prints",
}
#: every page with a fenced python, bash, sh or toml block (parsed by the tests, so a bad marker fails one)
PAGES = sorted(
    str(p.relative_to(ROOT))
    for p in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    if re.search(r"^ *```(python|bash|sh|toml) *$", p.read_text(encoding="utf-8"), re.MULTILINE)
)
TOML = """\
[client]
data_dir = "var/dropcopy"
app_name = "RiskHub"
app_version = "1.0"
app_vendor = "Acme"
location = "US,IL"
reconnect_interval = 1

[[group]]
name = "clearing"
key_file = "keys.txt"
operator = "OPS1"

[[group.target]]
kind = "cgw"
sender_comp_id = "ABCDEFN"
primary = "127.0.0.1:{port}"
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str | None, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + (timeout if text else 5.0)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} ended with {self.proc.returncode}:\n{self.output()[-3000:]}"
                )
            if text and text in self.output():
                return
            time.sleep(0.1)
        if text:
            raise AssertionError(f"{self.name}: no {text!r} in {timeout:.0f} s:\n{self.output()[-3000:]}")

    def interrupt(self, timeout: float = 60.0) -> int:
        """Ctrl-C, as a user stops it; killed (and reported) if it does not end."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(
                    f"{self.name} did not stop on Ctrl-C:\n{self.output()[-3000:]}"
                ) from None
        return self.proc.returncode


@dataclass
class Workdir:
    path: Path
    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, argv: list[str]) -> Process:
        log = self.path / f".{len(self.processes)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=self.path,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        process = Process(name, proc, log)
        self.processes.append(process)
        return process

    def run(self, name: str, argv: list[str], timeout: float = 120.0) -> str:
        done = subprocess.run(
            argv,
            cwd=self.path,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"{name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
        return done.stdout + done.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Workdir]:
    """A reader's directory: key file, configuration, the simulator serving it, a journal with the demo."""
    today = dt.datetime.now(dt.UTC).date()
    key = generate_key("ABC", created=today - dt.timedelta(days=10), expires=today + dt.timedelta(days=300))
    write_key_file(tmp_path / "keys.txt", [key])
    (tmp_path / "dropcopy.toml").write_text(TOML.format(port=_free_port()), encoding="utf-8")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(ROOT)}
    env.pop("DROPCOPY_CONFIG", None)
    work = Workdir(tmp_path, env)
    try:
        simulator = work.start(
            "dropcopy simulate",
            [str(BIN / "dropcopy"), "simulate", "--config", "dropcopy.toml", "--interval", "0"],
        )
        simulator.wait_for("serving ABCDEFN:G")
        client = DropCopyClient.from_config(tmp_path / "dropcopy.toml")  # the demo's session, journaled
        client.start(wait=30)
        try:
            deadline = time.monotonic() + 30
            while client.status()[0].messages < 20 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            client.stop()
        yield work
    finally:
        failed = []
        for process in reversed(work.processes):  # all of them, before any is judged
            try:
                code = process.interrupt()
            except AssertionError as exc:  # did not stop on Ctrl-C: killed
                failed.append(str(exc))
                continue
            if code != 0:
                failed.append(f"{process.name} exited {code} on Ctrl-C:\n{process.output()[-3000:]}")
        assert not failed, "\n\n".join(failed)


def run_page(page: str, work: Workdir) -> list[tuple[Snippet, str]]:
    """Run every snippet of ``page`` in ``work``; returns each run snippet with its output."""
    results: list[tuple[Snippet, str]] = []
    running: list[Process] = []

    def stop_running() -> None:
        # every process is stopped before any is judged: a failing one must not leave the others running
        failed = []
        while running:
            process = running.pop()
            try:
                code = process.interrupt()
            except AssertionError as exc:  # did not stop on Ctrl-C: killed
                failed.append(str(exc))
                continue
            if code != 0:
                failed.append(f"{process.name} exited {code} on Ctrl-C:\n{process.output()[-3000:]}")
            results.append((snippet_of[process.name], process.output()))
        assert not failed, "\n\n".join(failed)

    snippet_of: dict[str, Snippet] = {}
    try:
        for snippet in snippets(ROOT / page):
            if snippet.kind == "skip":
                continue
            if snippet.lang == "python":
                private = re.search(r"(from|import) dropcopy_client\._\w+", snippet.code)
                assert private is None, (
                    f"{snippet.where}: imports a private module ({private and private[0]})"
                )
                stop_running()
            if snippet.lang == "toml":
                _check_toml(snippet, work.path)
                results.append((snippet, ""))
                continue
            argv = _argv(snippet)
            if snippet.kind == "background":
                process = work.start(snippet.where, argv)
                snippet_of[snippet.where] = snippet
                running.append(process)
                process.wait_for(snippet.ready)
                continue
            results.append((snippet, work.run(snippet.where, argv)))
        stop_running()
    finally:
        for process in running:
            work.processes.append(process)  # the fixture stops it
    return results


def _argv(snippet: Snippet) -> list[str]:
    if snippet.lang == "python":
        return [sys.executable, "-c", snippet.code]
    if snippet.kind == "background":  # one command, run directly so that Ctrl-C reaches it
        [line] = [ln for ln in snippet.code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        return shlex.split(line, comments=True)
    return ["bash", "-euo", "pipefail", "-c", snippet.code]


def _check_toml(snippet: Snippet, where: Path) -> None:
    data = tomllib.loads(snippet.code)
    if any(isinstance(g, dict) and g.get("target") for g in data.get("group", [])):
        path = where / "snippet.toml"
        path.write_text(snippet.code, encoding="utf-8")
        load_config(path)  # a whole configuration: it must load


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", [p for p in PAGES if p not in ELSEWHERE])
def test_every_snippet_runs(page: str, workdir: Workdir) -> None:
    results = run_page(page, workdir)
    assert results, f"{page}: no snippet ran"


def _skipped() -> list[tuple[str, str]]:
    out = [(page, reason) for page, reason in ELSEWHERE.items()]
    for page in PAGES:
        if page in ELSEWHERE:
            continue
        try:
            found = snippets(ROOT / page)
        except SnippetError as exc:  # reported by test_every_snippet_runs; listed here as unexplained
            out.append((page, f"!{exc}"))
            continue
        for snippet in found:
            if snippet.kind == "skip":
                out.append((f"{page}:{snippet.line}", snippet.arg or ""))
    return out


@pytest.mark.parametrize(("where", "reason"), _skipped(), ids=[w for w, _ in _skipped()])
def test_skipped_snippets_say_why(where: str, reason: str) -> None:
    assert reason.strip() and not reason.startswith("!"), f"{where}: skipped without a reason {reason[1:]}"
    pytest.skip(f"snippet not run: {where}: {reason}")


def test_the_markers_are_read() -> None:
    """Guards the tests above against passing because the parser found nothing."""
    assert len(PAGES) >= 8
    ours = [p for p in PAGES if p not in ELSEWHERE or p == "docs/quickstart.md"]
    kinds = {(s.lang, s.kind) for page in ours for s in snippets(ROOT / page)}
    assert {
        ("python", "run"),
        ("bash", "run"),
        ("toml", "run"),
        ("bash", "skip"),
        ("bash", "background"),
    } <= kinds


# ---------------------------------------------------------------------------------------------- quickstart


@pytest.mark.timeout(300)
def test_the_quickstart_runs_in_order(workdir: Workdir) -> None:
    """demo --keep, positions, simulate, run, status, positions, eod: as a new user pastes them."""
    results = run_page("docs/quickstart.md", workdir)
    outputs = {snippet.code.split("\n")[0].split("#")[0].strip(): out for snippet, out in results}
    demo = next(out for cmd, out in outputs.items() if cmd.startswith("dropcopy demo --keep"))
    assert "kept in" in demo and "dropcopy.toml" in demo
    commands = [snippet.code for snippet, _ in results if snippet.lang == "bash"]
    assert any("dropcopy simulate" in c for c in commands) and any("dropcopy run" in c for c in commands)
    status = next(out for snippet, out in results if "dropcopy status" in snippet.code)
    assert "dropcopy run is running" in status and "logged on" in status
    assert "End-of-day report" in status  # the same block runs positions and eod while the client runs
    shown = [out for snippet, out in results if "dropcopy positions" in snippet.code]
    assert "ACCT1    ESZ6" in shown[0]  # the demo's positions, before anything else ran
    run = next(out for snippet, out in results if snippet.code.startswith("dropcopy run"))
    assert "Fill" in run and "logged on" in run
