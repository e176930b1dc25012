"""dropcopy_client.config: the TOML loader and its validation.

Every error must say where (the file, and the group/target it concerns), which key, and the wrong value, so a
user can fix a configuration without reading the code. The tests for builder errors naming the file and key,
``backup = ""``, the type of ``key_file`` and the range of the timers were written against defects of config.py,
fixed in 5716ad4.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from dropcopy_client.config import (
    ClientConfig,
    Endpoint,
    SessionEndpoints,
    SinkConfig,
    cgw_target,
    config_from_dict,
    load_config,
    msgw_target,
)
from dropcopy_client.errors import ConfigError
from dropcopy_client.sinks import JsonLinesSink

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "config"
EXAMPLE = FIXTURES / "example.toml"

CGW_PRIMARY = 'primary = "10.1.1.1:11000"'
CGW_COMP = 'sender_comp_id = "ABCDEFN"'
MSGW_COMP = 'sender_comp_id = "XYZDEFN"'
SEG_84 = '"84" = { primary = "10.2.1.84:12000", backup = "10.2.2.84:12000" }'


def variant(tmp_path: Path, old: str, new: str, *, base: Path = EXAMPLE) -> Path:
    """A copy of ``base`` with one change, in ``tmp_path``; fails if ``old`` is not in the file."""
    text = base.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {base.name}"
    path = tmp_path / "dropcopy.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dropcopy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def assert_names(message: str, *parts: str) -> None:
    missing = [part for part in parts if part not in message]
    assert not missing, f"{missing} not in error message {message!r}"


# -- valid files -----------------------------------------------------------------------------------------------


def test_the_issue_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.source == str(EXAMPLE)
    assert (config.app_name, config.app_version, config.app_vendor) == ("RiskHub", "1.0", "Acme")
    assert (config.location, config.heartbeat) == ("US,IL", 30)
    assert (config.reconnect_interval, config.logon_timeout) == (5, 10)
    assert config.data_dir == FIXTURES / "var" / "dropcopy"
    (group,) = config.groups
    assert (group.name, group.operator, group.environment) == ("clearing", "OPS1", "production")
    assert group.key_file == FIXTURES / "keys" / "dropcopy-keys.txt"
    assert group.key_env is False
    cgw, msgw = group.targets
    assert (cgw.kind, cgw.sender_comp_id) == ("cgw", "ABCDEFN")
    assert dict(cgw.segments) == {
        "G": SessionEndpoints(Endpoint("10.1.1.1", 11000), Endpoint("10.1.2.1", 11000)),
    }
    assert (msgw.kind, msgw.sender_comp_id) == ("msgw", "XYZDEFN")
    assert dict(msgw.segments) == {
        "84": SessionEndpoints(Endpoint("10.2.1.84", 12000), Endpoint("10.2.2.84", 12000)),
        "92": SessionEndpoints(Endpoint("10.2.1.92", 12000), Endpoint("10.2.2.92", 12000)),
    }


def test_minimal_file_gets_the_defaults() -> None:
    config = load_config(FIXTURES / "minimal.toml")
    assert config == ClientConfig(
        groups=config.groups,
        data_dir=FIXTURES / "var" / "dropcopy",
        source=str(FIXTURES / "minimal.toml"),
    )
    (group,) = config.groups
    assert (group.key_env, group.key_file, group.environment) == (True, None, None)
    assert dict(group.targets[0].segments) == {"G": SessionEndpoints(Endpoint("10.1.1.1", 11000), None)}


def test_two_groups_every_client_option_and_absolute_paths() -> None:
    config = load_config(FIXTURES / "two_groups.toml")
    assert config.data_dir == Path("/var/lib/dropcopy")
    assert (config.location, config.heartbeat, config.reconnect_interval, config.logon_timeout) == (
        "GB,LDN",
        60,
        3,
        20,
    )
    clearing, risk = config.groups
    assert clearing.key_file == Path("/etc/dropcopy/clearing-keys.txt")
    assert clearing.environment == "cert"  # case-insensitive, stored lower-case
    # a bare TOML key is a string too; localhost becomes an IP literal (QuickFIX needs literals)
    assert dict(clearing.targets[0].segments) == {"84": SessionEndpoints(Endpoint("127.0.0.1", 12084))}
    assert (risk.key_env, risk.key_file, risk.operator) == (True, None, "risk.desk@acme")


def test_relative_paths_resolve_against_the_config_files_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # A relative config path gives paths relative to the same working directory: equal once resolved.
    config = load_config(os.path.relpath(EXAMPLE, elsewhere))
    key_file = config.groups[0].key_file
    assert key_file is not None
    assert key_file.resolve() == FIXTURES / "keys" / "dropcopy-keys.txt"
    assert config.data_dir.resolve() == FIXTURES / "var" / "dropcopy"

    nested = tmp_path / "etc" / "dropcopy"
    nested.mkdir(parents=True)
    path = variant(nested, 'key_file = "keys/dropcopy-keys.txt"', 'key_file = "../secrets/k.txt"')
    assert load_config(path).groups[0].key_file == nested / ".." / "secrets" / "k.txt"


def test_config_from_dict_resolves_against_base_or_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {
        "group": [
            {
                "name": "g",
                "operator": "OPS1",
                "key_file": "k.txt",
                "target": [{"kind": "cgw", "sender_comp_id": "ABCDEFN", "primary": "10.1.1.1:1"}],
            }
        ]
    }
    assert config_from_dict(data, base=tmp_path).groups[0].key_file == tmp_path / "k.txt"
    monkeypatch.chdir(tmp_path)
    config = config_from_dict(data)
    assert config.groups[0].key_file == tmp_path / "k.txt"
    assert config.source == "<dict>"


def test_python_builders() -> None:
    target = cgw_target("ABCDEFN", "10.1.1.1:11000", Endpoint("10.1.2.1", 11000))
    assert dict(target.segments) == {
        "G": SessionEndpoints(Endpoint("10.1.1.1", 11000), Endpoint("10.1.2.1", 11000))
    }
    msgw = msgw_target("XYZDEFN", {"84": ("10.2.1.84:1", None), "92": ("10.2.1.92:1", "10.2.2.92:1")})
    assert list(msgw.segments) == ["84", "92"]
    with pytest.raises(ConfigError, match="at least one market segment"):
        msgw_target("XYZDEFN", {})


# -- sender_comp_id ----------------------------------------------------------------------------------------------

BAD_COMP_IDS = [
    ("ABCDEF", "must be 7 characters"),
    ("ABCDEFGN", "must be 7 characters"),
    ("", "must be 7 characters"),
    ("abcdefN", "upper-case letters and digits"),
    ("ABC-EFN", "upper-case letters and digits"),
    ("ABCDEFY", "fault tolerance indicator 'N'"),
    ("ABCDEFn", "fault tolerance indicator 'N'"),
]


@pytest.mark.parametrize(("comp", "reason"), BAD_COMP_IDS)
@pytest.mark.parametrize("line", [CGW_COMP, MSGW_COMP])
def test_comp_id_errors_name_the_file_and_group(tmp_path: Path, line: str, comp: str, reason: str) -> None:
    path = variant(tmp_path, line, f'sender_comp_id = "{comp}"')
    assert_names(
        error_of(path),
        str(path),
        "group 'clearing'",
        f"target {comp!r}",
        "sender_comp_id",
        repr(comp),
        reason,
    )


def test_comp_id_must_be_a_string(tmp_path: Path) -> None:
    path = variant(tmp_path, CGW_COMP, "sender_comp_id = 1234567")
    assert_names(
        error_of(path), str(path), "group 'clearing'", "sender_comp_id = 1234567", "must be a string"
    )


# -- market segments ---------------------------------------------------------------------------------------------

BAD_SEGMENTS = ["8a", "1234", "", "G", "-1", " 84"]


@pytest.mark.parametrize("segment", BAD_SEGMENTS)
def test_segment_id_errors_name_the_file_and_key(tmp_path: Path, segment: str) -> None:
    path = variant(tmp_path, '"84" = {', f'"{segment}" = {{')
    assert_names(
        error_of(path),
        str(path),
        "group 'clearing'",
        f"segment {segment!r}",
        "market segment id",
        "1-3 digits",
    )


@pytest.mark.parametrize(
    ("old", "new", "parts"),
    [
        (SEG_84, '"84" = "10.2.1.84:12000"', ["segment '84'", "must be {"]),
        (SEG_84, '"84" = { backup = "10.2.2.84:12000" }', ["segment '84'", "primary is required"]),
        (SEG_84, '"84" = { primary = 12000 }', ["segment '84'", "primary = 12000", "must be a string"]),
    ],
)
def test_segment_table_errors(tmp_path: Path, old: str, new: str, parts: list[str]) -> None:
    path = variant(tmp_path, old, new)
    assert_names(error_of(path), str(path), "group 'clearing'", "target 'XYZDEFN'", *parts)


def test_msgw_target_needs_segments(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    cut = text.index("[group.target.segments]")
    for tail in ("", "segments = {}\n", "segments = 5\n", 'segments = ["84"]\n'):
        path = write(tmp_path, text[:cut] + tail)
        assert_names(error_of(path), str(path), "target 'XYZDEFN'", "segments must be a table")


def test_duplicate_segment_in_one_table_is_a_toml_error(tmp_path: Path) -> None:
    path = variant(tmp_path, SEG_84, SEG_84 + "\n" + SEG_84)
    assert_names(error_of(path), str(path), "not valid TOML")


def test_cgw_target_with_segments_and_msgw_target_with_primary(tmp_path: Path) -> None:
    path = variant(tmp_path, CGW_PRIMARY, CGW_PRIMARY + '\nsegments = { "84" = { primary = "10.1.1.1:1" } }')
    assert_names(
        error_of(path), str(path), "target 'ABCDEFN'", "a CGW target has primary/backup, not segments"
    )
    path = variant(tmp_path, MSGW_COMP, MSGW_COMP + '\nprimary = "10.1.1.1:1"')
    assert_names(error_of(path), str(path), "target 'XYZDEFN'", "an MSGW target lists segments")


# -- host:port ---------------------------------------------------------------------------------------------------

BAD_ENDPOINTS = [
    ("10.1.1.1", "'10.1.1.1' is not host:port"),
    ("10.1.1.1:", "'10.1.1.1:' is not host:port"),
    (":11000", "':11000' is not host:port"),
    ("10.1.1.1:http", "'10.1.1.1:http' is not host:port"),
    ("10.1.1.1:-1", "'10.1.1.1:-1' is not host:port"),
    ("10.1.1.1:0", "port 0 is out of range 1-65535"),
    ("10.1.1.1:65536", "port 65536 is out of range 1-65535"),
    ("gw1.cme.example:11000", "host 'gw1.cme.example' is not an IPv4 address"),
    ("[::1]:11000", "host '[::1]' is not an IPv4 address"),
    ("010.1.1.1:11000", "host '010.1.1.1' is not an IPv4 address"),
    ("10.1.1.256:11000", "host '10.1.1.256' is not an IPv4 address"),
]


@pytest.mark.parametrize(("value", "shown"), BAD_ENDPOINTS)
@pytest.mark.parametrize(
    ("old", "where"),
    [
        (CGW_PRIMARY, "target 'ABCDEFN' primary"),
        ('backup = "10.1.2.1:11000"', "target 'ABCDEFN' backup"),
        ('primary = "10.2.1.84:12000"', "target 'XYZDEFN' segment '84' primary"),
        ('backup = "10.2.2.84:12000"', "target 'XYZDEFN' segment '84' backup"),
    ],
)
def test_endpoint_errors_name_the_file_and_key(
    tmp_path: Path, old: str, where: str, value: str, shown: str
) -> None:
    key = old.split(" ")[0]
    path = variant(tmp_path, old, f'{key} = "{value}"')
    assert_names(error_of(path), str(path), "group 'clearing'", where, shown)


@pytest.mark.parametrize("old", ['backup = "10.1.2.1:11000"', 'backup = "10.2.2.84:12000"'])
def test_empty_or_non_string_backup_is_refused(tmp_path: Path, old: str) -> None:
    # An empty backup used to be read as "no backup": the session silently lost its failover gateway.
    path = variant(tmp_path, old, 'backup = ""')
    assert_names(error_of(path), str(path), "backup = ''", "leave the key out")
    path = variant(tmp_path, old, "backup = 11000")
    assert_names(error_of(path), str(path), "backup = 11000", "must be a string")


@pytest.mark.parametrize("port", ["1²", "１１０００"])
def test_port_with_non_ascii_digits_is_refused(tmp_path: Path, port: str) -> None:
    path = variant(tmp_path, CGW_PRIMARY, f'primary = "10.1.1.1:{port}"')
    assert_names(error_of(path), str(path), "target 'ABCDEFN' primary", port)


def test_endpoint_parse_accepts_ipv4_and_localhost() -> None:
    assert Endpoint.parse("10.1.1.1:11000") == Endpoint("10.1.1.1", 11000)
    assert Endpoint.parse("localhost:1") == Endpoint("127.0.0.1", 1)
    assert Endpoint.parse("10.1.1.1:65535").port == 65535
    assert str(Endpoint("10.1.1.1", 11000)) == "10.1.1.1:11000"


def test_cgw_primary_is_required_and_must_be_a_string(tmp_path: Path) -> None:
    path = variant(tmp_path, CGW_PRIMARY, "")
    assert_names(error_of(path), str(path), "target 'ABCDEFN'", 'primary = "host:port" is required')
    path = variant(tmp_path, CGW_PRIMARY, "primary = 11000")
    assert_names(error_of(path), str(path), "target 'ABCDEFN'", "primary = 11000", "must be a string")


# -- unknown keys at every level ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "where", "key"),
    [
        ("[client]", "clients = 1\n[client]", "", "'clients'"),
        ("heartbeat = 30", "heartbeat = 30\nheartbeat_interval = 30", "[client]", "'heartbeat_interval'"),
        ('operator = "OPS1"', 'operator = "OPS1"\nkeyfile = "x"', "[[group]] #1", "'keyfile'"),
        (CGW_PRIMARY, CGW_PRIMARY + '\nsegment = "G"', "group 'clearing' target #1", "'segment'"),
        (MSGW_COMP, MSGW_COMP + "\nbackup_segments = {}", "group 'clearing' target #2", "'backup_segments'"),
        (SEG_84, SEG_84.replace(" }", ', standby = "10.1.1.1:1" }'), "segment '84'", "'standby'"),
    ],
)
def test_unknown_keys_are_refused_at_every_level(
    tmp_path: Path, old: str, new: str, where: str, key: str
) -> None:
    path = variant(tmp_path, old, new)
    message = error_of(path)
    assert_names(message, str(path), where, "unknown", key, "allowed" if where else "expected")


def test_tables_of_the_wrong_shape(tmp_path: Path) -> None:
    path = write(tmp_path, "client = 5\n")
    assert_names(error_of(path), str(path), "[client]", "must be a table")
    path = write(tmp_path, "[client]\n")
    assert_names(error_of(path), str(path), "at least one [[group]] is required")
    path = write(tmp_path, '[group]\nname = "g"\n')
    assert_names(error_of(path), str(path), "at least one [[group]] is required")
    path = write(tmp_path, "group = [5]\n")
    assert_names(error_of(path), str(path), "[[group]] #1", "must be a table")
    path = variant(tmp_path, "[[group.target]]", "[group.target0]")
    assert_names(error_of(path), str(path), "unknown key(s) ['target0']")


# -- groups ------------------------------------------------------------------------------------------------------


def test_missing_key_file_and_key_env(tmp_path: Path) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', "")
    assert_names(error_of(path), str(path), "group 'clearing'", "key_file", "key_env")
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', "key_env = false")
    assert_names(error_of(path), str(path), "group 'clearing'", "key_file", "key_env")


def test_key_file_and_key_env_both_set(tmp_path: Path) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', 'key_file = "k.txt"\nkey_env = true')
    assert_names(error_of(path), str(path), "group 'clearing'", "key_file and key_env are exclusive")


def test_key_env_must_be_a_boolean(tmp_path: Path) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', 'key_env = "yes"')
    assert_names(error_of(path), str(path), "group 'clearing'", "key_env = 'yes'", "true or false")


@pytest.mark.parametrize(("value", "shown"), [("true", "True"), ("5", "5"), ('""', "''"), ('"  "', "'  '")])
def test_key_file_must_be_a_non_empty_string(tmp_path: Path, value: str, shown: str) -> None:
    # These used to load as paths ('<dir>/True', the config directory itself) and fail only at start.
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', f"key_file = {value}")
    assert_names(
        error_of(path), str(path), "group 'clearing'", f"key_file = {shown}", "path of a CME key file"
    )


def test_key_store_is_a_path_relative_to_the_config(tmp_path: Path) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', 'key_store = "keys/dropcopy.dcks"')
    group = load_config(path).groups[0]
    assert (group.key_store, group.key_file, group.key_env) == (
        tmp_path / "keys" / "dropcopy.dcks",
        None,
        False,
    )
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', 'key_store = "/etc/dropcopy/keys.dcks"')
    assert load_config(path).groups[0].key_store == Path("/etc/dropcopy/keys.dcks")


@pytest.mark.parametrize(
    ("new", "named"),
    [
        ('key_file = "k.txt"\nkey_store = "k.dcks"', "key_file and key_store are exclusive"),
        ('key_store = "k.dcks"\nkey_env = true', "key_store and key_env are exclusive"),
        ('key_file = "k.txt"\nkey_store = "k.dcks"\nkey_env = true', "key_file and key_store and key_env"),
    ],
)
def test_key_store_is_exclusive_with_key_file_and_key_env(tmp_path: Path, new: str, named: str) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', new)
    assert_names(error_of(path), str(path), "group 'clearing'", named, "choose one")


def test_missing_key_source_names_all_three(tmp_path: Path) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', "")
    assert_names(error_of(path), str(path), "group 'clearing'", "key_file", "key_store", "key_env")


@pytest.mark.parametrize(("value", "shown"), [("true", "True"), ("5", "5"), ('""', "''")])
def test_key_store_must_be_a_non_empty_string(tmp_path: Path, value: str, shown: str) -> None:
    path = variant(tmp_path, 'key_file = "keys/dropcopy-keys.txt"', f"key_store = {value}")
    assert_names(
        error_of(path), str(path), "group 'clearing'", f"key_store = {shown}", "dropcopy keys import"
    )


@pytest.mark.parametrize("value", ['"prod"', '"test"', '""', "1"])
def test_bad_environment(tmp_path: Path, value: str) -> None:
    path = variant(tmp_path, 'environment = "production"', f"environment = {value}")
    shown = repr(value.strip('"')) if value.startswith('"') else value
    assert_names(error_of(path), str(path), "group 'clearing'", f"environment = {shown}", "production, cert")


@pytest.mark.parametrize("value", ["production", "CERT", "NewRelease"])
def test_environment_is_case_insensitive(tmp_path: Path, value: str) -> None:
    path = variant(tmp_path, 'environment = "production"', f'environment = "{value}"')
    assert load_config(path).groups[0].environment == value.lower()


@pytest.mark.parametrize(
    ("old", "new", "parts"),
    [
        ('name = "clearing"\n', "", ["[[group]] #1", "name is required"]),
        ('name = "clearing"', "name = 7", ["[[group]] #1", "name = 7", "must be a string"]),
        ('operator = "OPS1"\n', "", ["group 'clearing'", "operator is required"]),
        (
            'operator = "OPS1"',
            'operator = "OPS 1"',
            ["group 'clearing'", "operator = 'OPS 1'", "50 SenderSubID"],
        ),
        ('operator = "OPS1"', 'operator = "O"', ["operator = 'O'", "2-18 characters"]),
        ('operator = "OPS1"', f'operator = "{"X" * 19}"', [f"operator = '{'X' * 19}'", "2-18 characters"]),
        ('kind = "cgw"\n', "", ["target #1", "kind is required"]),
        ('kind = "cgw"', 'kind = "CGW"', ["target 'ABCDEFN'", "kind = 'CGW'", 'expected "cgw" or "msgw"']),
        ('kind = "cgw"', 'kind = "ilink"', ["kind = 'ilink'"]),
        (CGW_COMP + "\n", "", ["target #1", "sender_comp_id is required"]),
    ],
)
def test_group_and_target_fields(tmp_path: Path, old: str, new: str, parts: list[str]) -> None:
    path = variant(tmp_path, old, new)
    assert_names(error_of(path), str(path), *parts)


def test_group_needs_a_target(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    path = write(tmp_path, text[: text.index("[[group.target]]")])
    assert_names(error_of(path), str(path), "group 'clearing'", "at least one [[group.target]]")


def test_duplicate_group_name(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    second = text[text.index("[[group]]") :].replace("ABCDEFN", "QRSTUVN").replace("XYZDEFN", "KLMNOPN")
    path = write(tmp_path, text + "\n" + second)
    assert_names(error_of(path), str(path), "group name 'clearing' is used twice")


@pytest.mark.parametrize(
    ("second_target", "session"),
    [
        ('kind = "cgw"\nsender_comp_id = "ABCDEFN"\nprimary = "10.9.9.9:1"', "ABCDEFN segment G"),
        (
            'kind = "msgw"\nsender_comp_id = "XYZDEFN"\nsegments = { "92" = { primary = "10.9.9.9:1" } }',
            "XYZDEFN segment 92",
        ),
    ],
)
def test_duplicate_session_across_groups(tmp_path: Path, second_target: str, session: str) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    extra = f'\n[[group]]\nname = "risk"\nkey_env = true\noperator = "OPS2"\n\n[[group.target]]\n{second_target}\n'
    path = write(tmp_path, text + extra)
    assert_names(error_of(path), str(path), session, "groups 'clearing' and 'risk'", "belongs to one group")


def test_duplicate_session_inside_one_group(tmp_path: Path) -> None:
    again = f'[[group.target]]\nkind = "cgw"\n{CGW_COMP}\nprimary = "10.9.9.9:1"\n\n[[group.target]]\nkind = "msgw"'
    path = variant(tmp_path, '[[group.target]]\nkind = "msgw"', again)
    assert_names(error_of(path), str(path), "ABCDEFN segment G", "groups 'clearing' and 'clearing'")


def test_same_sender_comp_id_as_cgw_and_msgw_are_different_sessions(tmp_path: Path) -> None:
    path = variant(tmp_path, MSGW_COMP, CGW_COMP)
    config = load_config(path)
    assert [(t.kind, list(t.segments)) for t in config.groups[0].targets] == [
        ("cgw", ["G"]),
        ("msgw", ["84", "92"]),
    ]


# -- [client] ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["4", "61", "0", "-30", "3600"])
def test_heartbeat_out_of_range(tmp_path: Path, value: str) -> None:
    path = variant(tmp_path, "heartbeat = 30", f"heartbeat = {value}")
    assert_names(error_of(path), str(path), "[client]", f"heartbeat = {value}", "5-60 seconds")


@pytest.mark.parametrize("value", ['"30"', "30.0", "true"])
def test_heartbeat_must_be_an_integer(tmp_path: Path, value: str) -> None:
    path = variant(tmp_path, "heartbeat = 30", f"heartbeat = {value}")
    shown = {'"30"': "'30'", "30.0": "30.0", "true": "True"}[value]
    assert_names(error_of(path), str(path), "[client]", f"heartbeat = {shown}", "must be an integer")


@pytest.mark.parametrize("value", [5, 60])
def test_heartbeat_bounds_are_inclusive(tmp_path: Path, value: int) -> None:
    assert load_config(variant(tmp_path, "heartbeat = 30", f"heartbeat = {value}")).heartbeat == value


@pytest.mark.parametrize(("key", "value"), [("reconnect_interval", '"5"'), ("logon_timeout", "1.5")])
def test_timers_must_be_integers(tmp_path: Path, key: str, value: str) -> None:
    path = variant(tmp_path, "heartbeat = 30", f"heartbeat = 30\n{key} = {value}")
    assert_names(error_of(path), str(path), "[client]", key, "must be an integer")


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("key", ["reconnect_interval", "logon_timeout"])
def test_timers_must_be_positive(tmp_path: Path, key: str, value: int) -> None:
    # A negative value used to load and then fail at client.start() with a raw quickfix.ConfigError.
    path = variant(tmp_path, "heartbeat = 30", f"heartbeat = 30\n{key} = {value}")
    assert_names(error_of(path), str(path), "[client]", f"{key} = {value}", "at least 1")
    assert getattr(load_config(variant(tmp_path, "heartbeat = 30", f"heartbeat = 30\n{key} = 1")), key) == 1


@pytest.mark.parametrize(
    ("line", "parts"),
    [
        ('location = ""', ["location = ''", "142 SenderLocationID"]),
        ('location = "US,IL€"', ["location = 'US,IL€'", "ASCII"]),
        ("location = 1", ["location = 1", "must be a string"]),
        (f'app_name = "{"N" * 31}"', ["app_name", "1-30 ASCII characters"]),
        ('app_version = "1.0.0-beta.1"', ["app_version = '1.0.0-beta.1'", "1-10 ASCII characters"]),
        ('app_vendor = ""', ["app_vendor = ''", "1-10 ASCII characters"]),
        ('app_vendor = "Acmé"', ["app_vendor = 'Acmé'", "ASCII"]),
        ("data_dir = 5", ["data_dir = 5", "must be a string"]),
    ],
)
def test_client_fields(tmp_path: Path, line: str, parts: list[str]) -> None:
    key = line.split(" ")[0]
    text = EXAMPLE.read_text(encoding="utf-8")
    old = next(x for x in text.splitlines() if x.startswith(f"{key} ="))
    path = variant(tmp_path, old, line)
    assert_names(error_of(path), str(path), "[client]", *parts)


def test_app_name_at_its_limit(tmp_path: Path) -> None:
    path = variant(tmp_path, 'app_name = "RiskHub"', f'app_name = "{"N" * 30}"')
    assert load_config(path).app_name == "N" * 30


# -- the file itself ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert_names(error_of(path), str(path), "cannot read configuration")


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = variant(tmp_path, "heartbeat = 30", "heartbeat = ")
    assert_names(error_of(path), str(path), "not valid TOML", "line 10")


def test_unknown_top_level_key_says_what_is_expected(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE.read_text(encoding="utf-8") + "\n[server]\nport = 1\n")
    assert_names(error_of(path), str(path), "unknown top-level key(s) ['server']", "[client] and [[group]]")


def test_config_errors_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load_config(tmp_path / "nope.toml")


# -- [[sink]] ----------------------------------------------------------------------------------------------------

SINKS = """
[[sink]]
url = "postgresql://risk@10.3.1.5:5432/risk"
table = "fills"

[[sink]]
url = "jsonl:archive/dropcopy"
name = "archive"
start = "now"
on_error = "dead_letter"
"""


def with_sinks(tmp_path: Path, text: str) -> Path:
    return write(tmp_path, EXAMPLE.read_text(encoding="utf-8") + text)


def test_no_sink_tables_means_no_sinks() -> None:
    assert load_config(EXAMPLE).sinks == ()


def test_sink_tables_load_with_their_defaults(tmp_path: Path) -> None:
    config = load_config(with_sinks(tmp_path, SINKS))
    pg, archive = config.sinks
    assert pg == SinkConfig(
        url="postgresql://risk@10.3.1.5:5432/risk", name="postgres", table="fills", start="beginning"
    )
    assert (pg.kind, pg.on_error) == ("postgres", "retry")
    # a relative jsonl directory is relative to the configuration file, like data_dir
    assert archive == SinkConfig(
        url=f"jsonl://{tmp_path}/archive/dropcopy", name="archive", start="now", on_error="dead_letter"
    )
    assert archive.kind == "jsonl"
    sink = archive.open()
    try:
        assert isinstance(sink, JsonLinesSink) and sink.name == "archive"
        assert sink.directory == tmp_path / "archive" / "dropcopy"
    finally:
        sink.close()


@pytest.mark.parametrize(
    ("url", "name"),
    [("postgres://u@h/db", "postgres"), ("jsonl:///var/lib/dc", "jsonl"), ("JSONL:x", "jsonl")],
)
def test_the_default_name_comes_from_the_scheme(tmp_path: Path, url: str, name: str) -> None:
    (sink,) = load_config(with_sinks(tmp_path, f'\n[[sink]]\nurl = "{url}"\n')).sinks
    assert sink.name == name


def test_a_password_in_the_url_is_never_shown(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = with_sinks(
        tmp_path, '\n[[sink]]\nurl = "postgresql://risk:hunter22@10.3.1.5/risk"\nstart = "later"\n'
    )
    message = error_of(path)
    assert_names(message, str(path), "sink 'postgres'", "start = 'later'", '"beginning"', '"now"')
    assert "hunter22" not in message
    path = with_sinks(tmp_path, '\n[[sink]]\nurl = "postgresql://risk:hunter22@10.3.1.5/risk"\n')
    config = load_config(path)
    assert "hunter22" not in repr(config) and "risk:***@10.3.1.5" in repr(config)
    assert "~/.pgpass" in caplog.text and "hunter22" not in caplog.text


@pytest.mark.parametrize(
    ("lines", "parts"),
    [
        ('name = "x"', ["[[sink]] #1", "url", "jsonl:archive"]),
        ('url = ""', ["[[sink]] #1", "url = ''"]),
        ("url = 5", ["[[sink]] #1", "url = 5"]),
        ('url = "mysql://u:pw@h/db"', ["[[sink]] #1", "mysql://u:***@h/db", "postgresql, postgres, jsonl"]),
        ('url = "s3://bucket"', ["[[sink]] #1", "s3://bucket", "accepted"]),
        ('url = "jsonl://host/dir"', ["sink 'jsonl'", "not a host", "jsonl:///absolute/dir"]),
        ('url = "jsonl:"', ["sink 'jsonl'", "no directory"]),
        ('url = "jsonl:x"\ntable = "t"', ["sink 'jsonl'", "table = 't'", "only a PostgreSQL sink"]),
        ('url = "postgres://h/db"\ntable = ""', ["sink 'postgres'", "table = ''"]),
        ('url = "postgres://h/db"\ntable = 3', ["sink 'postgres'", "table = 3"]),
        ('url = "jsonl:x"\nname = ""', ["[[sink]] #1", "name = ''", "cursor"]),
        ('url = "jsonl:x"\nname = 7', ["[[sink]] #1", "name = 7", "must be a string"]),
        ('url = "jsonl:x"\non_error = "ignore"', ["sink 'jsonl'", "on_error = 'ignore'", '"dead_letter"']),
        ('url = "jsonl:x"\nstart = 0', ["sink 'jsonl'", "start = 0", "must be a string"]),
        ('url = "jsonl:x"\nbatch = 5', ["[[sink]] #1", "unknown key(s) ['batch']", "on_error"]),
    ],
)
def test_sink_errors_name_file_key_and_value(tmp_path: Path, lines: str, parts: list[str]) -> None:
    path = with_sinks(tmp_path, f"\n[[sink]]\n{lines}\n")
    assert_names(error_of(path), str(path), *parts)


def test_two_sinks_with_one_name(tmp_path: Path) -> None:
    path = with_sinks(tmp_path, '\n[[sink]]\nurl = "jsonl:a"\n\n[[sink]]\nurl = "jsonl:b"\n')
    assert_names(error_of(path), str(path), "sink name 'jsonl' is used twice", 'name = "..."')


def test_sink_must_be_an_array_of_tables(tmp_path: Path) -> None:
    path = with_sinks(tmp_path, '\n[sink]\nurl = "jsonl:a"\n')
    assert_names(error_of(path), str(path), "[[sink]], not [sink]")
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match=r"<dict> \[\[sink\]\] #1: must be a table"):
        config_from_dict({**data, "sink": ["jsonl:a"]})


def test_config_toml_writes_sinks_back(tmp_path: Path) -> None:
    from dropcopy_client.testing import config_toml

    config = load_config(with_sinks(tmp_path, SINKS))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert load_config(write(elsewhere, config_toml(config))).sinks == config.sinks
