"""Owner-only files: permission warnings for key files, stores and data_dir; private atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from dropcopy_client._fsperm import (
    check_paths,
    check_private,
    make_private_dir,
    permission_warnings,
    write_private,
)
from dropcopy_client.config import ClientConfig, GroupConfig, cgw_target

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")


def test_owner_only_file_gives_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("x")
    path.chmod(0o600)
    assert check_private(path, "key file") is None
    path.chmod(0o400)
    assert check_private(path, "key file") is None


@pytest.mark.parametrize(
    ("mode", "who"),
    [
        (0o644, "group can read it and others can read it"),
        (0o640, "group can read it"),
        (0o604, "others can read it"),
        (0o620, "group can write it"),
        (0o666, "group can read/write it and others can read/write it"),
        (0o610, "group or others have access"),
    ],
)
def test_loose_file_warns_with_mode_who_and_the_fix(tmp_path: Path, mode: int, who: str) -> None:
    path = tmp_path / "keys.txt"
    path.write_text("x")
    path.chmod(mode)
    assert (
        check_private(path, "key file") == f"key file {path}: mode {mode:04o}, {who}; run: chmod 600 {path}"
    )


def test_loose_directory_suggests_700(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir()
    directory.chmod(0o755)
    warning = check_private(directory, "data_dir")
    assert warning is not None and warning.endswith(f"run: chmod 700 {directory}")


def test_missing_path_gives_no_warning(tmp_path: Path) -> None:
    assert check_private(tmp_path / "nope", "key file") is None
    assert check_paths([(None, "key file"), (tmp_path / "nope", "key store")]) == []


def test_permission_warnings_cover_key_files_stores_and_data_dir(tmp_path: Path) -> None:
    plain, store, data = tmp_path / "keys.txt", tmp_path / "keys.dcks", tmp_path / "data"
    plain.write_text("x")
    store.write_bytes(b"x")
    data.mkdir()
    for path, mode in ((plain, 0o644), (store, 0o640), (data, 0o750)):
        path.chmod(mode)
    target = (cgw_target("X12004N", "127.0.0.1:1"),)
    config = ClientConfig(
        groups=(
            GroupConfig("a", "OPS1", target, key_file=plain),
            GroupConfig("b", "OPS1", (cgw_target("Y12004N", "127.0.0.1:1"),), key_store=store),
            GroupConfig("c", "OPS1", (cgw_target("Z12004N", "127.0.0.1:1"),), key_env=True),
        ),
        data_dir=data,
    )
    warnings = permission_warnings(config)
    assert [w.split(":")[0] for w in warnings] == [
        f"group 'a' key file {plain}",
        f"group 'b' key store {store}",
        f"data_dir {data}",
    ]
    for path in (plain, store):
        path.chmod(0o600)
    data.chmod(0o700)
    assert permission_warnings(config) == []


def test_write_private_is_owner_only_atomic_and_clean(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o666)
    old = os.umask(0)
    try:
        write_private(path, b"new")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_write_private_leaves_nothing_when_it_fails(tmp_path: Path) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    with pytest.raises(OSError):
        write_private(target, b"data")  # cannot rename a file over a directory
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]


def test_make_private_dir(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        directory = make_private_dir(tmp_path / "a" / "data")
    finally:
        os.umask(old)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
