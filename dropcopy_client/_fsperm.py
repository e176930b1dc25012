"""Owner-only files: permission checks for what holds credentials or trading data, and private writes.

A CME key file (or key store) lets anyone who reads it log on as the firm, and five bad logons close its
port; ``data_dir`` holds the journal of every fill. This module says when such a path can be read or written by
the file's group or by other users (:func:`check_private`, :func:`permission_warnings`), and writes files
the library creates so that only their owner can read them (:func:`write_private`, :func:`make_private_dir`).

POSIX only: on other systems permission bits say little and the checks report nothing.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from dropcopy_client.config import ClientConfig

#: Permission bits a private file or directory must not have: anything for group or others.
_LOOSE: Final = stat.S_IRWXG | stat.S_IRWXO


def _who(mode: int) -> str:
    classes = []
    for name, read, write in (
        ("group", stat.S_IRGRP, stat.S_IWGRP),
        ("others", stat.S_IROTH, stat.S_IWOTH),
    ):
        access = "/".join(word for word, bit in (("read", read), ("write", write)) if mode & bit)
        if access:
            classes.append(f"{name} can {access} it")
    return " and ".join(classes) or "group or others have access"


def check_private(path: str | os.PathLike[str], what: str) -> str | None:
    """A warning when ``path`` is open to its group or to other users, else None.

    ``what`` names the thing in the warning ("key file", "key store", "data_dir"). The text says how to fix
    it, e.g. ``key store /etc/dc/keys.dcks: mode 0644, group can read it and others can read it; run: chmod
    600 /etc/dc/keys.dcks``. A path that does not exist, or a non-POSIX system, gives None: reading the file
    reports those problems better.
    """
    if os.name != "posix":
        return None
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except OSError:
        return None
    if not mode & _LOOSE:
        return None
    fix = "700" if stat.S_ISDIR(mode) else "600"
    return f"{what} {name}: mode {stat.S_IMODE(mode):04o}, {_who(mode)}; run: chmod {fix} {name}"


def check_paths(items: Iterable[tuple[str | os.PathLike[str] | None, str]]) -> list[str]:
    """:func:`check_private` for each ``(path, what)``; ``None`` paths are skipped."""
    return [w for path, what in items if path is not None and (w := check_private(path, what)) is not None]


def permission_warnings(config: ClientConfig) -> list[str]:
    """Warnings for every key file, key store and the ``data_dir`` of a configuration (``dropcopy run``).

    An empty list means all of them are owner-only (or do not exist yet). A caller with ``--strict`` refuses
    to start when the list is not empty.
    """
    items: list[tuple[str | os.PathLike[str] | None, str]] = []
    for group in config.groups:
        items.append((group.key_file, f"group {group.name!r} key file"))
        items.append((group.key_store, f"group {group.name!r} key store"))
    items.append((config.data_dir, "data_dir"))
    return check_paths(items)


def make_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) with mode 0700 for the last component; existing dirs are kept."""
    directory = Path(path)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def write_private(path: str | os.PathLike[str], data: bytes, *, prefix: str = ".dropcopy-") -> None:
    """Replace ``path`` with ``data`` atomically, readable by its owner only (0600).

    A temporary file in the same directory (created 0600 by ``mkstemp``), written and fsync'ed, then renamed
    over ``path``, then the directory fsync'ed: a crash leaves either the old file or the new one, never a
    mix, and never a moment where the new content is readable by others. The temporary file is removed when
    anything fails.
    """
    name = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(name))
    fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            if hasattr(os, "fchmod"):  # mkstemp creates it 0600; say so explicitly, whatever the platform did
                os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some systems do not open directories; the rename itself is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
