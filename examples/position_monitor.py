"""Watch net positions change, live: a local CME simulator, a client, one handler. No credentials needed."""

import tempfile
from pathlib import Path

import dropcopy_client as dc
from dropcopy_client.testing import demo_script, group_layout

with tempfile.TemporaryDirectory() as tmp:
    sim, config = group_layout(msgw={}, key_file=Path(tmp) / "keys.txt")  # throwaway key, simulator started
    client = dc.DropCopyClient(config)

    @client.on_position
    def show(p: dc.Position) -> None:
        print(p.account, p.instrument, f"net {p.net_qty:+d} avg {p.avg_open_px} realized {p.realized_pnl}")

    with sim:
        client.start(wait=15)
        script = demo_script()
        sim.send_many(sim.sessions[0], script)
        sim.wait_for(lambda: client.status()[0].messages >= len(script), 15)
        client.stop()  # delivers everything received, then logs out
