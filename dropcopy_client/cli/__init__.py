"""The ``dropcopy`` command line. The library never prints; this module does."""

from __future__ import annotations

import logging

import click

from dropcopy_client._logging import LogFormat, configure_logging
from dropcopy_client.cli.audit import audit
from dropcopy_client.cli.certify import certify
from dropcopy_client.cli.demo import demo, simulate
from dropcopy_client.cli.export import export
from dropcopy_client.cli.keys import keys
from dropcopy_client.cli.positions import eod, positions, replay
from dropcopy_client.cli.run import run, status


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    envvar="DROPCOPY_LOG_FORMAT",
    help="Log lines on stderr as text, or as one JSON object per line (keys: time, level, logger, message, "
    "and session, seq, event ... when the record has them) for a log shipper.",
)
@click.version_option(package_name="dropcopy-client")
def main(verbose: int, log_format: LogFormat) -> None:
    """CME Globex Drop Copy 4.0 client."""
    configure_logging(logging.WARNING - 10 * min(verbose, 2), log_format)


main.add_command(keys)
main.add_command(demo)
main.add_command(simulate)
main.add_command(run)
main.add_command(status)
main.add_command(positions)
main.add_command(eod)
main.add_command(replay)
main.add_command(audit)
main.add_command(export)
main.add_command(certify)
