"""The codec's errors: every refusal of bad input is one of these, never a bare exception."""

from __future__ import annotations

from dataclasses import dataclass


class FixCodecError(ValueError):
    """Base of every error the FIX codec raises."""


class GarbledError(FixCodecError):
    """A single message given to :func:`gateway.fix.codec.decode` is not a valid message."""

    def __init__(self, reason: str, raw: bytes) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class EncodeError(FixCodecError):
    """Fields that cannot be put on the wire (bad tag, empty value, SOH in a non-data value...)."""


class FieldError(FixCodecError):
    """A field of a parsed message is missing or its value is not what was asked for."""


class GroupError(FieldError):
    """A repeating group does not match its count or its layout."""


class TimestampError(FixCodecError):
    """A UTCTimestamp that is malformed or out of range."""


@dataclass(frozen=True, slots=True)
class Garbled:
    """Bytes from the stream that are not a valid message: skipped, reported, never sequenced.

    ``reason`` is short and stable enough to log; ``raw`` is the skipped bytes (a garbled frame
    from its ``8=`` up to the next frame start, or garbage between frames).
    """

    reason: str
    raw: bytes
