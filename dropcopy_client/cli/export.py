"""``dropcopy export``: write the journal to a sink now, without connecting to CME."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import click

from dropcopy_client._export import ExportError, export_journal
from dropcopy_client._journal import JournalError
from dropcopy_client.cli._exit import EXIT_CONFIG, EXIT_FAILED, EXIT_OK
from dropcopy_client.cli._format import config_option, progress_bar
from dropcopy_client.config import load_config, sink_from_url
from dropcopy_client.errors import ConfigError, SinkError
from dropcopy_client.positions import PositionBook

#: journals longer than this get a progress bar on stderr
PROGRESS_THRESHOLD = 10_000


@click.command()
@config_option("The TOML configuration (or set DROPCOPY_CONFIG): its data_dir holds the journal.")
@click.option(
    "--sink",
    "url",
    required=True,
    metavar="URL",
    help="Where to: postgresql://user@host:5432/db or jsonl:DIR (as in [[sink]]).",
)
@click.option(
    "--name",
    default=None,
    help="The sink's name (names its cursor; default: its kind, postgres or jsonl, like [[sink]]).",
)
@click.option(
    "--after-id",
    type=click.IntRange(min=0),
    default=None,
    help="Start after this journal id (default: where the sink's own cursor is, or the beginning).",
)
@click.option(
    "--from",
    "since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    metavar="YYYY-MM-DD[THH:MM:SS]",
    help="Only events received at or after this time (UTC).",
)
def export(
    config_path: Path, url: str, name: str | None, after_id: int | None, since: dt.datetime | None
) -> None:
    """Write the journal's events (and the positions they make) to a sink, then exit.

    Reads <data_dir>/journal.sqlite read-only, so it runs beside `dropcopy run`. A PostgreSQL sink commits
    its cursor with every batch: run the same command again after an interruption and it continues where it
    stopped; exporting to the sink a running client feeds (same name) only fills in what it lacks.
    Positions are valued with the configuration's [positions] multipliers, as the running client values them.
    Exits 0 when everything up to the journal's last row was written, 1 when the sink failed, 2 on a
    configuration error or a start (--after-id/--from) past what a sink with its own cursor already holds.
    """
    ctx = click.get_current_context()
    try:
        config = load_config(config_path)
        sink_config = sink_from_url(url, name=name)
    except ConfigError as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    path = Path(config.data_dir) / "journal.sqlite"
    if not path.exists():
        click.echo(
            f"dropcopy: no journal at {path}: run `dropcopy run --config {config_path}` first", err=True
        )
        ctx.exit(EXIT_FAILED)
    groups = {
        f"{t.sender_comp_id}:{segment}": g.name
        for g in config.groups
        for t in g.targets
        for segment in t.segments
    }
    try:
        sink = sink_config.open()
    except (SinkError, ConfigError, ImportError) as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_FAILED)
    try:
        with progress_bar("exporting", PROGRESS_THRESHOLD) as progress:
            result = export_journal(
                path,
                sink,
                groups=groups,
                after_id=after_id,
                since=since.replace(tzinfo=dt.UTC) if since is not None else None,
                book=PositionBook(multipliers=config.positions.multipliers),
                progress=progress,
            )
    except ExportError as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    except (SinkError, JournalError, OSError) as exc:
        click.echo(f"dropcopy: export stopped: {exc}. Run the same command again to continue", err=True)
        ctx.exit(EXIT_FAILED)
    finally:
        with contextlib.suppress(Exception):
            sink.close()
    if result.batches:
        click.echo(
            f"exported {result.events} events (journal ids {result.first_id}..{result.last_id}) in "
            f"{result.batches} batches to sink {result.sink!r}",
            err=True,
        )
    else:
        click.echo(
            f"sink {result.sink!r} is up to date (journal id {result.started_after}); nothing to export",
            err=True,
        )
    ctx.exit(EXIT_OK)
