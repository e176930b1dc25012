"""The ``dropcopy`` command line. The library never prints; this module does."""

from __future__ import annotations

import logging

import click

from dropcopy_client.cli.audit import audit
from dropcopy_client.cli.certify import certify
from dropcopy_client.cli.demo import demo, simulate
from dropcopy_client.cli.export import export
from dropcopy_client.cli.keys import keys
from dropcopy_client.cli.positions import eod, positions, replay
from dropcopy_client.cli.run import run, status


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="dropcopy-client")
def main(verbose: int) -> None:
    """CME Globex Drop Copy 4.0 client."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
