"""The CLI's exit codes (docs/reference/cli.md lists them)."""

from typing import Final

#: everything as it should be
EXIT_OK: Final = 0
#: the command failed (cannot start, the journal holds unaccounted numbers, ...)
EXIT_FAILED: Final = 1
#: a configuration or key file is wrong: nothing was attempted
EXIT_CONFIG: Final = 2
#: a session is locked out (its logon was refused): `run` exits with this once no session can make progress
EXIT_LOCKED_OUT: Final = 3
#: numbers were declared lost this trading week (`status`)
EXIT_LOST: Final = 4
#: no `dropcopy run` is running for this configuration (`status`)
EXIT_NOT_RUNNING: Final = 5
