"""Which identity the rehearsal logs on with: the session ids, operator, location, application fields and
heartbeat of the user's configuration (or of a built-in example), never its addresses or keys.

A rehearsal always runs against the local simulator on 127.0.0.1, with rehearsal keys generated for the
configured session ids: the user's key file is never read, so a production secret never enters a rehearsal.
"""

from __future__ import annotations

from typing import Any

import attrs

from dropcopy_client.config import ClientConfig, GroupConfig, TargetConfig

#: session ids of the built-in example (the same as docs' and tests' example configuration)
EXAMPLE_CGW = "ABCDEFN"
EXAMPLE_MSGW = "XYZDEFN"
EXAMPLE_SEGMENTS = ("84", "92")
EXAMPLE_OPERATOR = "OPS1"
_SPARE_SEGMENTS = ("84", "92", "98", "95", "96", "97")


@attrs.frozen
class TargetIds:
    """One target's identity: the group it belongs to (name, operator = 50) and its SenderCompID (49)."""

    group: str
    operator: str
    sender_comp_id: str
    environment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "operator": self.operator,
            "sender_comp_id": self.sender_comp_id,
            "environment": self.environment,
        }


@attrs.frozen
class Profile:
    """What a rehearsal takes from a configuration. ``notes`` say what had to be filled in from the example
    (a configuration without an MSGW target, say) so that every scenario can still run."""

    source: str
    cgw: TargetIds
    msgw: TargetIds
    segments: tuple[str, str]
    location: str = "US,IL"
    app_name: str = "RiskHub"
    app_version: str = "1.0"
    app_vendor: str = "Acme"
    heartbeat: int = 30
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "cgw": self.cgw.to_dict(),
            "msgw": {**self.msgw.to_dict(), "segments": list(self.segments)},
            "location": self.location,
            "app_name": self.app_name,
            "app_version": self.app_version,
            "app_vendor": self.app_vendor,
            "heartbeat": self.heartbeat,
            "notes": list(self.notes),
        }


def example_profile() -> Profile:
    """The built-in example: CGW target ABCDEFN, MSGW target XYZDEFN on segments 84 and 92, operator OPS1,
    application RiskHub 1.0 by Acme, location US,IL, heartbeat 30 s."""
    return Profile(
        source="built-in example configuration",
        cgw=TargetIds("clearing", EXAMPLE_OPERATOR, EXAMPLE_CGW),
        msgw=TargetIds("clearing", EXAMPLE_OPERATOR, EXAMPLE_MSGW),
        segments=EXAMPLE_SEGMENTS,
    )


def profile_from_config(config: ClientConfig) -> Profile:
    """The rehearsal identity of ``config``: its first CGW target, its first MSGW target and that target's first
    two segments, the client's 142/1603/1604/1605/108. What the configuration lacks is taken from the example
    and said in ``notes``."""
    notes: list[str] = []
    cgw = _first(config, "cgw")
    msgw = _first(config, "msgw")
    fallback_group = config.groups[0] if config.groups else None
    if cgw is None:
        operator = fallback_group.operator if fallback_group is not None else EXAMPLE_OPERATOR
        cgw_ids = TargetIds(fallback_group.name if fallback_group else "clearing", operator, EXAMPLE_CGW)
        notes.append(
            f"the configuration has no CGW target: the CGW scenarios log on as the example {EXAMPLE_CGW}"
        )
    else:
        cgw_ids = _ids(*cgw)
    if msgw is None:
        operator = fallback_group.operator if fallback_group is not None else EXAMPLE_OPERATOR
        msgw_ids = TargetIds(fallback_group.name if fallback_group else "clearing", operator, EXAMPLE_MSGW)
        segments: list[str] = list(EXAMPLE_SEGMENTS)
        notes.append(
            f"the configuration has no MSGW target: the MSGW scenarios log on as the example {EXAMPLE_MSGW} "
            f"on segments {' and '.join(EXAMPLE_SEGMENTS)}"
        )
    else:
        msgw_ids = _ids(*msgw)
        segments = list(msgw[1].segments)[:2]
        if len(segments) < 2:
            spare = next(s for s in _SPARE_SEGMENTS if s not in segments)
            segments.append(spare)
            notes.append(
                f"MSGW target {msgw_ids.sender_comp_id} has one segment ({segments[0]}): AutoCert+ logs on to "
                f"two segments at once, so the rehearsal adds segment {spare}"
            )
    if msgw_ids.sender_comp_id == cgw_ids.sender_comp_id:
        raise ValueError(f"{config.source}: the CGW and MSGW targets have the same SenderCompID")
    return Profile(
        source=config.source,
        cgw=cgw_ids,
        msgw=msgw_ids,
        segments=(segments[0], segments[1]),
        location=config.location,
        app_name=config.app_name,
        app_version=config.app_version,
        app_vendor=config.app_vendor,
        heartbeat=config.heartbeat,
        notes=tuple(notes),
    )


def _first(config: ClientConfig, kind: str) -> tuple[GroupConfig, TargetConfig] | None:
    for group in config.groups:
        for target in group.targets:
            if target.kind == kind:
                return group, target
    return None


def _ids(group: GroupConfig, target: TargetConfig) -> TargetIds:
    return TargetIds(group.name, group.operator, target.sender_comp_id, group.environment)
