"""A risk sink: alert when an account's absolute net position in any instrument exceeds its limit.

A sink is any object with ``on_event(event)`` and ``close()``; plug it in with ``client.on_event(sink.on_event)``
and call ``close()`` after ``client.stop()``. This one watches the ``Position`` events the client emits after
every fill, bust or correction, so a bust that brings a position back under its limit clears the alert too.
Run it against the local simulator: ``python examples/risk_sink.py``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import dropcopy_client as dc
from dropcopy_client.testing import demo_script, group_layout


class NetLimitSink:
    """Per-account limit on |net position| in each instrument; ``alert`` gets one line per breach and clearance."""

    def __init__(
        self, limits: Mapping[str, int], *, default: int, alert: Callable[[str], object] = print
    ) -> None:
        self.limits = dict(limits)
        self.default = default
        self.alert = alert
        self.breached: set[tuple[str, str]] = set()

    def on_event(self, event: object) -> None:
        if not isinstance(event, dc.Position):
            return
        limit = self.limits.get(event.account, self.default)
        key = (event.account, event.security_id)
        if abs(event.net_qty) > limit and key not in self.breached:
            self.breached.add(key)
            self.alert(
                f"ALERT {event.account} {event.instrument} net {event.net_qty:+d} exceeds limit {limit}"
            )
        elif abs(event.net_qty) <= limit and key in self.breached:
            self.breached.discard(key)
            self.alert(
                f"CLEAR {event.account} {event.instrument} net {event.net_qty:+d} within limit {limit}"
            )

    def close(self) -> None:
        still = (
            ", ".join(f"{account} {security_id}" for account, security_id in sorted(self.breached)) or "none"
        )
        self.alert(f"risk sink closed; positions over their limit: {still}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        sim, config = group_layout(
            msgw={}, key_file=Path(tmp) / "keys.txt"
        )  # throwaway key, simulator started
        sink = NetLimitSink({"ACCT1": 5, "ACCT2": 4}, default=0)
        client = dc.DropCopyClient(config)
        client.on_event(sink.on_event)
        with sim:
            client.start(wait=15)
            script = demo_script()
            sim.send_many(sim.sessions[0], script)
            sim.wait_for(lambda: client.status()[0].messages >= len(script), 15)
            client.stop()
        sink.close()
