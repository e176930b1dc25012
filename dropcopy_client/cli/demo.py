"""``dropcopy demo``: the whole path on one machine, no credentials, no network beyond 127.0.0.1."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import click

from dropcopy_client._client import DropCopyClient
from dropcopy_client.cli._format import describe, position_table
from dropcopy_client.testing import DEMO_SESSION, Simulator, demo_config, demo_key, demo_script


@click.command()
@click.option(
    "--keep", type=click.Path(file_okay=False, path_type=Path), help="Keep the journal and key file here."
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the scripted session.")
def demo(keep: Path | None, timeout: float) -> None:
    """Run a scripted trading session through the simulator and print events and positions."""
    with tempfile.TemporaryDirectory(prefix="dropcopy-demo-") as tmp:
        base = keep or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        key = demo_key()
        session = DEMO_SESSION
        script = demo_script()
        with Simulator([key], sessions=[session]) as sim:
            host, port = sim.endpoint(session)
            config = demo_config(sim, base, key)
            client = DropCopyClient(config)
            received = 0
            done = threading.Event()

            @client.on_event
            def show(event: object) -> None:
                nonlocal received
                line = describe(event)
                if line:
                    click.echo(line)
                if getattr(event, "delivery", None) is not None:
                    received += 1
                    if received >= len(script):
                        done.set()

            click.echo(f"simulator listening on {host}:{port}; key {key.access_key_id} (secret never shown)")
            client.start(wait=timeout)
            sim.send_many(session, script)
            finished = done.wait(timeout)
            client.stop()
        click.echo("")
        click.echo(position_table(client.book.snapshot()))
        orders = client.book.working_orders()
        click.echo(
            f"\n{received} business messages received, {len(orders)} working orders, "
            f"{len(client.book.exceptions)} exceptions"
        )
        if not finished:
            raise click.ClickException(
                f"only {received} of {len(script)} scripted messages arrived in {timeout:.0f} s"
            )
