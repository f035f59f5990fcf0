"""Exceptions of the core (kept apart: compiled modules cannot subclass built-in exceptions)."""


class SequenceError(RuntimeError):
    """A command arrived out of sequence or with time running backwards: a bug upstream."""


class CodecError(ValueError):
    """A command that cannot be encoded, or a payload that is not a valid encoding."""


class JournalError(Exception):
    """The journal cannot be used as asked (bad sequence, failed writer, needs repair...)."""


class JournalCorruption(JournalError):
    """The log does not verify before its tail: the venue must not start on it."""


class SnapshotFormatError(ValueError):
    """A snapshot in a format or version this core does not read: recovery skips it and
    replays the journal instead (an incompatible configuration is a different error)."""
