"""``dropcopy certify``: rehearse every AutoCert+ Drop Copy 4.0 scenario against the local simulator, with the
user's identity and handler, and keep the evidence (HTML + JSON).

The work is :mod:`dropcopy_client.certify`; this module parses options, prints one progress line per scenario
and a summary table, and writes the report.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from dropcopy_client.certify import (
    DEFAULT_WAIT,
    SCENARIOS,
    Profile,
    ScenarioFinished,
    ScenarioStarted,
    example_profile,
    load_handler,
    profile_from_config,
    report_json,
    run_certification,
    scenario_names,
    write_report,
)
from dropcopy_client.cli._exit import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from dropcopy_client.cli._format import format_table
from dropcopy_client.config import load_config
from dropcopy_client.errors import ConfigError


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your TOML configuration: its session ids, operator, location, application fields and heartbeat are "
    "rehearsed (never its addresses or keys). Default: a built-in example.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    metavar="NAME",
    help="Run only this scenario (repeatable; see --list). Default: all, in AutoCert+ order.",
)
@click.option(
    "--handler",
    "handler_spec",
    metavar="MODULE:FUNCTION",
    help="Your event handler, registered on the client of every scenario (called with every event).",
)
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the report here: dropcopy-certify-<time>.html and .json.",
)
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep each scenario's rehearsal keys (rehearsal-keys.txt), key file and data_dir (journal, QuickFIX "
    "store) in DIR/<scenario>.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the JSON report on stdout (progress goes to stderr)."
)
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
@click.option(
    "--wait",
    default=DEFAULT_WAIT,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Seconds a scenario waits for any one thing (a logon, a message) before it fails.",
)
def certify(
    config_path: Path | None,
    scenarios: tuple[str, ...],
    handler_spec: str | None,
    report_dir: Path | None,
    keep_dir: Path | None,
    as_json: bool,
    list_only: bool,
    wait: float,
) -> None:
    """Rehearse CME's AutoCert+ Drop Copy 4.0 certification against the local simulator (127.0.0.1).

    Every scenario logs on with your configuration's identity and rehearsal keys, plays CME's steps, and checks
    the result on the wire and in what the client decoded (and your handler received). Exit codes: 0 every
    scenario passed, 1 a scenario failed (the report says which check and why), 2 a wrong option, configuration
    or handler (nothing ran).
    """
    ctx = click.get_current_context()
    if list_only:
        rows = [[s.name, s.suite, s.title] for s in SCENARIOS]
        click.echo(format_table(["SCENARIO", "SUITE", "AUTOCERT+ TEST"], rows))
        ctx.exit(EXIT_OK)
    unknown = [name for name in scenarios if name not in scenario_names()]
    if unknown:
        click.echo(
            f"dropcopy: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(scenario_names())} "
            "(dropcopy certify --list)",
            err=True,
        )
        ctx.exit(EXIT_CONFIG)
    chosen = list(scenarios) or list(scenario_names())
    taken = [str(keep_dir / n) for n in chosen if keep_dir is not None and _not_empty(keep_dir / n)]
    if taken:
        click.echo(
            f"dropcopy: --keep: {', '.join(taken)} already hold a rehearsal; choose an empty directory",
            err=True,
        )
        ctx.exit(EXIT_CONFIG)
    try:
        profile = _profile(config_path)
        handler = None
        if handler_spec:
            if os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # as `python -m` does: modules next to you are importable
            handler = load_handler(handler_spec)
    except (ConfigError, ValueError) as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    out = sys.stderr if as_json else sys.stdout
    click.echo(
        f"Rehearsing {len(chosen)} AutoCert+ scenario(s) against the local simulator (127.0.0.1) as "
        f"{profile.cgw.sender_comp_id} / {profile.msgw.sender_comp_id} ({profile.source})",
        file=out,
    )
    for note in profile.notes:
        click.echo(f"  note: {note}", file=out)
    width = max(len(name) for name in chosen)

    def progress(event: ScenarioStarted | ScenarioFinished) -> None:
        if isinstance(event, ScenarioStarted):
            prefix = (
                f"[{event.index:>2}/{event.total}] {event.scenario.name:<{width}}  {event.scenario.title} ..."
            )
            click.echo(prefix, file=out, nl=False)
            out.flush()
            return
        result = event.result
        verdict = "passed" if result.passed else "FAILED"
        click.echo(f" {verdict} ({result.seconds:.1f} s)", file=out)
        if not result.passed:
            click.echo(f"      {result.reason}", file=out)

    with _quiet_library():
        result = run_certification(
            chosen,
            profile=profile,
            handler=handler,
            handler_name=handler_spec or "",
            work_dir=keep_dir,
            wait=wait,
            progress=progress,
        )
    if as_json:
        click.echo(report_json(result), nl=False)
    else:
        click.echo("")
        rows = [
            [s.name, "passed" if s.passed else "FAILED", f"{s.seconds:.1f}", s.reason or "-"]
            for s in result.scenarios
        ]
        click.echo(format_table(["SCENARIO", "RESULT", "SECONDS", "WHY"], rows, right=(2,)))
    passed = sum(s.passed for s in result.scenarios)
    click.echo(f"\n{passed} of {len(result.scenarios)} scenarios passed.", file=out)
    if report_dir is not None:
        html_path, json_path = write_report(result, report_dir)
        click.echo(f"Report: {html_path} (open it in a browser) and {json_path}", file=out)
    else:
        click.echo("Add --report DIR to keep the evidence (HTML and JSON).", file=out)
    ctx.exit(EXIT_OK if result.passed else EXIT_FAILED)


def _not_empty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def _profile(config_path: Path | None) -> Profile:
    if config_path is None:
        return example_profile()
    return profile_from_config(load_config(config_path))


@contextlib.contextmanager
def _quiet_library() -> Iterator[None]:
    """Without -v, the warnings the scenarios provoke on purpose (a refused logon, a failover) would interleave
    with the progress lines: show the library's errors only. The report keeps every message exchanged."""
    logger = logging.getLogger("dropcopy_client")
    previous = logger.level
    if logging.getLogger().getEffectiveLevel() >= logging.WARNING and previous == logging.NOTSET:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)
