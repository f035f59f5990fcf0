"""Clearing's exceptions, kept out of the compiled risk stage (mypyc cannot compile classes that
derive from built-in exceptions)."""

from __future__ import annotations


class InvariantError(AssertionError):
    """The risk stage's books do not add up: a bug, never a participant's mistake. The core fails
    the command and the venue stops rather than go on with wrong balances."""
