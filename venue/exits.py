"""How the command line ends: its exit codes, and the one-line error every expected failure is.

Exit codes: 0 success; 1 the venue could not start or stopped on a failure (``verify``: a torn
tail would be cut; ``reconcile``: the ledger cannot be read, or is behind the journal); 2 the
journal or a snapshot is corrupt (``reconcile``: the ledger does not match); 3 bad configuration
or arguments; 130 interrupted during start.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_TAIL = 1
EXIT_CORRUPT = 2
EXIT_CONFIG = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An expected failure: printed as one line, exit with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code
