"""The ``[positions]`` table: loaded, validated with errors naming the file and key, and the end-of-day report
uses Position's field names for the same things."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from dropcopy_client.config import PositionsConfig, load_config
from dropcopy_client.errors import ConfigError
from dropcopy_client.positions import EodLine, Position

GROUP = """
[[group]]
name = "clearing"
key_file = "keys.txt"
operator = "OPS1"

[[group.target]]
kind = "cgw"
sender_comp_id = "ABCDEFN"
primary = "127.0.0.1:11000"
"""


def _load(tmp_path: Path, positions: str) -> PositionsConfig:
    path = tmp_path / "dropcopy.toml"
    path.write_text(GROUP + positions, encoding="utf-8")
    return load_config(path).positions


def test_multipliers_and_accounts_load(tmp_path: Path) -> None:
    settings = _load(
        tmp_path, '[positions]\nmultipliers = { ES = 50, ZN = "1000", MES = 5.0 }\naccounts = ["A1"]\n'
    )
    assert settings.multipliers == {"ES": Decimal(50), "ZN": Decimal(1000), "MES": Decimal("5.0")}
    assert settings.accounts == ("A1",)


def test_no_positions_table_means_no_multipliers_and_every_account(tmp_path: Path) -> None:
    assert _load(tmp_path, "") == PositionsConfig()


@pytest.mark.parametrize(
    ("table", "names"),
    [
        ("multipliers = 50", "multipliers = 50"),
        ("multipliers = { ES = -1 }", "multipliers.ES = -1"),
        ('multipliers = { ES = "lots" }', "multipliers.ES = 'lots'"),
        ("multipliers = { ES = true }", "multipliers.ES = True"),
        ('accounts = "A1"', "accounts = 'A1'"),
        ('accounts = [""]', "accounts = ['']"),
        ("account = []", "unknown key(s) ['account']"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, table: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, f"[positions]\n{table}\n")
    message = str(caught.value)
    assert "dropcopy.toml [positions]" in message and names in message


def test_the_eod_line_uses_position_names_for_the_same_things() -> None:
    position = {a.name for a in attrs.fields(Position)} | {
        name for name, value in vars(Position).items() if isinstance(value, property)
    }
    line = {a.name for a in attrs.fields(EodLine)}
    assert line <= position, f"EodLine fields Position calls otherwise: {sorted(line - position)}"
