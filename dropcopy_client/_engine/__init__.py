"""The only package that imports ``quickfix``. Everything above it talks to :class:`Engine`."""

from dropcopy_client._engine._app import ADMIN_IN, ADMIN_OUT, APP, LOGON, LOGOUT, NOTICE
from dropcopy_client._engine._engine import Engine, dictionary_path
from dropcopy_client._engine._recovery import RECOVERY

__all__ = [
    "ADMIN_IN",
    "ADMIN_OUT",
    "APP",
    "LOGON",
    "LOGOUT",
    "NOTICE",
    "RECOVERY",
    "Engine",
    "dictionary_path",
]
