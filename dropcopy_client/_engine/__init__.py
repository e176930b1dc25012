"""The engine: QuickFIX in a child process of its own (``_child``, ``_session``: the only modules that import
quickfix), and its handle in the user's process (``_process``)."""

from dropcopy_client._engine._process import DEFAULT_REFUSAL_PATTERNS, EngineDied, EngineProcess
from dropcopy_client._engine._protocol import ADMIN, APP, GAPFILL, LOG, LOST, NOTICE, RESET, Notice
from dropcopy_client._engine._settings import dictionary_path

__all__ = [
    "ADMIN",
    "APP",
    "DEFAULT_REFUSAL_PATTERNS",
    "GAPFILL",
    "LOG",
    "LOST",
    "NOTICE",
    "RESET",
    "EngineDied",
    "EngineProcess",
    "Notice",
    "dictionary_path",
]
