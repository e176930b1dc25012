"""``dropcopy demo`` and ``dropcopy simulate``: the whole path on one machine, no credentials, no network beyond
127.0.0.1.

``demo`` runs a scripted trading session through the simulator and the real client; with ``--keep DIR`` it
leaves a working setup behind (``dropcopy.toml``, its key file, the journal), so the other commands run on it
at once. ``simulate --config F`` stands in for CME for that configuration (or any loopback one): it serves every
configured session on its endpoints with the configuration's key files, continues the sequence numbers the
journal has, and streams scripted fills until Ctrl-C, so ``dropcopy run``, ``status``, ``positions`` and ``eod``
can be tried against it.
"""

from __future__ import annotations

import datetime as dt
import signal
import tempfile
import threading
import time
from pathlib import Path

import click

from dropcopy_client._client import DropCopyClient
from dropcopy_client._journal import Journal, JournalError
from dropcopy_client.cli._exit import EXIT_CONFIG
from dropcopy_client.cli._format import config_option, describe, position_table
from dropcopy_client.config import ClientConfig, load_config
from dropcopy_client.errors import ConfigError, KeyFileError, SimulatorError
from dropcopy_client.testing import (
    BUY,
    DEMO_SESSION,
    ESH7,
    ESZ6,
    SELL,
    ZNH7,
    Instrument,
    ScriptedSession,
    SimSession,
    Simulator,
    config_toml,
    demo_config,
    demo_key,
    demo_script,
)

#: the configuration ``demo --keep`` writes
CONFIG_FILE = "dropcopy.toml"


@click.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep a working setup here: dropcopy.toml, its key file and the journal (for `dropcopy simulate`, "
    "`run`, `status`, `positions`, `eod`).",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the scripted session.")
def demo(keep: Path | None, timeout: float) -> None:
    """Run a scripted trading session through the simulator and print events and positions."""
    with tempfile.TemporaryDirectory(prefix="dropcopy-demo-") as tmp:
        base = (keep or Path(tmp)).absolute()
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
        if keep is not None:
            path = base / CONFIG_FILE
            path.write_text(config_toml(config), encoding="utf-8")
            path.chmod(0o600)
            click.echo(
                f"\nkept in {base}: {CONFIG_FILE}, {Path(config.groups[0].key_file or '').name}, "
                f"{Path(config.data_dir).name}/ (the journal). Next:\n"
                f"  dropcopy positions --config {path}\n"
                f"  dropcopy simulate --config {path}      # CME's side, until Ctrl-C\n"
                f"  dropcopy run --config {path}           # in another shell"
            )
        if not finished:
            raise click.ClickException(
                f"only {received} of {len(script)} scripted messages arrived in {timeout:.0f} s"
            )


# ---------------------------------------------------------------------------------------------- simulate

#: what the stream trades, in turn: (instrument, account, side, price)
_TICKER: tuple[tuple[Instrument, str, str, str], ...] = (
    (ESZ6, "ACCT1", BUY, "4500.25"),
    (ZNH7, "ACCT2", SELL, "110.125"),
    (ESZ6, "ACCT1", SELL, "4501.00"),
    (ESH7, "ACCT2", BUY, "4510.50"),
)


@click.command()
@config_option(
    "The TOML configuration whose sessions to serve (or set DROPCOPY_CONFIG); loopback addresses only."
)
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    help="Seconds between scripted fills once a client is logged on (0: only the demo session).",
)
@click.option(
    "--count", default=0, show_default=True, help="Stop streaming after this many fills (0: never)."
)
@click.option("--no-demo", is_flag=True, help="Do not send the demo's trading session at the first logon.")
def simulate(config_path: Path, interval: float, count: int, no_demo: bool) -> None:
    """Stand in for CME: serve every session of the configuration on its endpoints until Ctrl-C.

    Accepts logons signed with the configuration's key files, continues the sequence numbers of its journal
    (so a client that ran before logs on again without a reset), sends the demo's trading session when a
    client first logs on (unless the journal shows it had it), then one order and its fill every --interval
    seconds. Every address in the configuration must be loopback (127.0.0.1, localhost): this never listens
    anywhere else.
    """
    ctx = click.get_current_context()
    try:
        config = load_config(config_path)
        sim = Simulator.from_config(config)
    except (ConfigError, KeyFileError, SimulatorError) as exc:
        click.echo(f"dropcopy: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        with sim:
            had_demo = _continue_sequences(sim, config)
            for session in sim.sessions:
                host, port = sim.endpoint(session)
                click.echo(f"serving {session.sender_comp_id}:{session.segment} on {host}:{port}", nl=True)
            click.echo("waiting for a client to log on; Ctrl-C stops", err=True)
            _serve(
                sim,
                stop,
                interval=interval,
                count=count,
                demo=set() if no_demo else set(sim.sessions) - had_demo,
            )
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on a configured endpoint ({exc}): is another simulator or process using the port?"
        ) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("simulator stopped", err=True)


def _continue_sequences(sim: Simulator, config: ClientConfig) -> set[SimSession]:
    """Start each session after the last number its journal accounts for, as CME would mid-week; returns the
    sessions the journal knows (they had the demo's session already)."""
    path = Path(config.data_dir) / "journal.sqlite"
    if not path.exists():
        return set()
    try:
        journal = Journal.open_readonly(path)
    except JournalError as exc:
        click.echo(f"dropcopy: {exc}; sequence numbers start at 1", err=True)
        return set()
    try:
        positions = journal.sessions()
    finally:
        journal.close()
    known = set()
    for session in sim.sessions:
        stored = positions.get(f"{session.sender_comp_id}:{session.segment}")
        if stored is not None:
            sim.set_sequences(session, next_outbound=max(stored.last_seq, stored.highest_seen) + 1)
            known.add(session)
    return known


def _serve(
    sim: Simulator, stop: threading.Event, *, interval: float, count: int, demo: set[SimSession]
) -> None:
    # ExecIDs unique across runs: a restarted simulator must not send what the journal already holds
    src = ScriptedSession(exec_id_prefix=10_000 + int(time.time()) % 90_000)
    greeted: set[SimSession] = set()
    sent = 0
    next_fill = time.monotonic() + interval
    while not stop.wait(0.1):
        logged_on = sim.sessions_logged_on()
        for session in logged_on:
            if session not in greeted:
                greeted.add(session)
                click.echo(f"{session.sender_comp_id}:{session.segment} logged on")
                if session in demo:
                    sim.send_many(session, demo_script())
                    click.echo("sent the demo's trading session")
        if not logged_on or interval <= 0 or (count and sent >= count) or time.monotonic() < next_fill:
            continue
        next_fill = time.monotonic() + interval
        instrument, account, side, price = _TICKER[sent % len(_TICKER)]
        qty = 1 + sent % 3
        for session in logged_on:
            order = src.order(instrument, account=account, side=side, qty=qty, price=price)
            sim.send_many(session, [order.ack(), order.fill()])
        sent += 1
        stamp = dt.datetime.now(dt.UTC).strftime("%H:%M:%S")
        verb = "buys" if side == BUY else "sells"
        click.echo(f"{stamp} fill {sent}: {account} {verb} {qty} {instrument.security_desc} @ {price}")
