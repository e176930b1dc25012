"""Whole drop copy groups for tests: a started simulator and the client configuration that points at it.

A real group has a CGW target (one session, 57=G) and usually an MSGW target with one session per market
segment, each with a primary and a backup gateway (spec §3.4, §5.1). :func:`group_layout` stands all of that up
on loopback ports chosen by the OS in one call, and :func:`config_toml` writes the configuration as the TOML a
user would, for tests that run the ``dropcopy`` command line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dropcopy_client.auth import ApiKey, generate_key, load_key_file, write_key_file
from dropcopy_client.config import ClientConfig, Endpoint, GroupConfig, TargetConfig, cgw_target, msgw_target
from dropcopy_client.testing._simulator import Simulator

__all__ = ["DEFAULT_MSGW", "MSGW_FO_SEGMENTS", "config_toml", "group_layout"]

#: 19 MSGW market segment ids shaped like CME's futures & options layout. Illustrative only: CME publishes the
#: real segment list (and changes it) as the MSGW configuration on its SFTP site (spec §3.4).
MSGW_FO_SEGMENTS: tuple[str, ...] = (
    "30",
    "31",
    "32",
    "34",
    "36",
    "38",
    "40",
    "42",
    "44",
    "46",
    "48",
    "50",
    "52",
    "54",
    "56",
    "58",
    "60",
    "62",
    "64",
)

#: The default MSGW target of :func:`group_layout`: one SenderCompID, three market segments.
DEFAULT_MSGW: Mapping[str, tuple[str, ...]] = MappingProxyType({"XYZDEFN": ("84", "92", "98")})


def group_layout(
    cgw: Iterable[str] = ("ABCDEFN",),
    msgw: Mapping[str, Iterable[str]] = DEFAULT_MSGW,
    *,
    key_file: str | os.PathLike[str],
    operator: str = "OPS1",
    name: str = "clearing",
    data_dir: str | os.PathLike[str] | None = None,
    environment: str | None = None,
    host: str = "127.0.0.1",
    simulator: Mapping[str, Any] | None = None,
    **client_options: Any,
) -> tuple[Simulator, ClientConfig]:
    """A **started** simulator serving one drop copy group, and a ready :class:`ClientConfig` for it.

    ``cgw`` lists CGW target SenderCompIDs; ``msgw`` maps MSGW target SenderCompIDs to their segment ids (use
    ``{"XYZDEFN": MSGW_FO_SEGMENTS}`` for a full 19-segment target). Every session gets a primary and a backup
    listener on an OS-chosen port of ``host`` (loopback only). ``key_file`` is what the client signs with; when
    it does not exist it is created with one fresh key per CME session id (the first three characters of each
    SenderCompID). ``data_dir`` defaults to ``data`` next to the key file. ``simulator`` holds
    :class:`Simulator` options; the remaining keyword arguments are :class:`ClientConfig` fields
    (``reconnect_interval`` defaults to 1 s here, so reconnect tests do not wait).

    Stop the simulator when done: ``sim, config = group_layout(...); with sim: ...``.
    """
    anywhere = Endpoint(host, 0)
    targets: list[TargetConfig] = [cgw_target(comp, anywhere, anywhere) for comp in cgw]
    for comp, segments in msgw.items():
        targets.append(msgw_target(comp, {str(seg): (anywhere, anywhere) for seg in segments}))
    if not targets:
        raise ValueError("group_layout needs at least one CGW or MSGW target")
    keys_path = Path(key_file)
    keys = _keys(keys_path, {target.sender_comp_id[:3] for target in targets}, environment)
    client_options.setdefault("reconnect_interval", 1)
    client_options.setdefault("source", "group_layout")
    config = ClientConfig(
        groups=(
            GroupConfig(
                name=name,
                operator=operator,
                targets=tuple(targets),
                key_file=keys_path,
                environment=environment,
            ),
        ),
        data_dir=Path(data_dir) if data_dir is not None else keys_path.parent / "data",
        **client_options,
    )
    sim = Simulator.from_config(config, keys, **(simulator or {}))
    sim.start()
    try:
        return sim, sim.bound_config(config)
    except BaseException:
        sim.stop()
        raise


def _keys(path: Path, session_ids: set[str], environment: str | None) -> tuple[ApiKey, ...]:
    if path.exists():
        return load_key_file(path).keys
    today = dt.datetime.now(dt.UTC).date()
    keys = tuple(
        generate_key(
            session_id,
            created=today - dt.timedelta(days=10),
            expires=today + dt.timedelta(days=300),
            environment=environment,
        )
        for session_id in sorted(session_ids)
    )
    write_key_file(path, keys)
    return keys


def config_toml(config: ClientConfig) -> str:
    """``config`` as a TOML file :func:`~dropcopy_client.config.load_config` reads back to an equal config
    (paths are written absolute, so the file can live anywhere)."""
    lines = [
        "[client]",
        f"data_dir = {_q(str(Path(config.data_dir).absolute()))}",
        f"app_name = {_q(config.app_name)}",
        f"app_version = {_q(config.app_version)}",
        f"app_vendor = {_q(config.app_vendor)}",
        f"location = {_q(config.location)}",
        f"heartbeat = {config.heartbeat}",
        f"reconnect_interval = {config.reconnect_interval}",
        f"logon_timeout = {config.logon_timeout}",
    ]
    for group in config.groups:
        lines += ["", "[[group]]", f"name = {_q(group.name)}", f"operator = {_q(group.operator)}"]
        if group.key_env:
            lines.append("key_env = true")
        elif group.key_file is not None:
            lines.append(f"key_file = {_q(str(Path(group.key_file).absolute()))}")
        if group.environment is not None:
            lines.append(f"environment = {_q(group.environment)}")
        for target in group.targets:
            lines += ["", "[[group.target]]", f"kind = {_q(target.kind)}"]
            lines.append(f"sender_comp_id = {_q(target.sender_comp_id)}")
            if target.kind == "cgw":
                endpoints = target.segments["G"]
                lines.append(f"primary = {_q(str(endpoints.primary))}")
                if endpoints.backup is not None:
                    lines.append(f"backup = {_q(str(endpoints.backup))}")
                continue
            lines.append("[group.target.segments]")
            for segment, endpoints in target.segments.items():
                pair = f"primary = {_q(str(endpoints.primary))}"
                if endpoints.backup is not None:
                    pair += f", backup = {_q(str(endpoints.backup))}"
                lines.append(f"{_q(segment)} = {{ {pair} }}")
    for sink in config.sinks:
        lines += ["", "[[sink]]", f"url = {_q(sink.url)}", f"name = {_q(sink.name)}"]
        if sink.table is not None:
            lines.append(f"table = {_q(sink.table)}")
        lines += [f"start = {_q(sink.start)}", f"on_error = {_q(sink.on_error)}"]
    return "\n".join(lines) + "\n"


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(text, ensure_ascii=False)
