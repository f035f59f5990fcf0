"""Exceptions of the core (kept apart: compiled modules cannot subclass built-in exceptions)."""


class SequenceError(RuntimeError):
    """A command arrived out of sequence or with time running backwards: a bug upstream."""
