"""FIX 4.4 for the gateway. So far: the wire codec used on the hot path.

Owns the wire format only: framing by BodyLength, CheckSum verification, tag=value fields with
length-prefixed data fields (RawData 96 for Binance-style signed Logon, Signature 89, ...),
repeating groups, encoding with generated BodyLength and CheckSum, prebuilt templates for the
hottest outgoing messages, and UTCTimestamp formatting and parsing. Bad input is never a bare
exception: the parser reports :class:`Garbled` items and resynchronises, everything else raises a
:class:`FixCodecError` subclass. The session layer, message store and application messages come
later and build on this.

Imports nothing of the venue.
"""

from gateway.fix.codec import (
    DATA_LENGTH_TAGS,
    DATA_TAGS,
    FixMessage,
    FixParser,
    MessageTemplate,
    decode,
    encode,
    encode_body,
    frame,
)
from gateway.fix.errors import (
    EncodeError,
    FieldError,
    FixCodecError,
    Garbled,
    GarbledError,
    GroupError,
    TimestampError,
)
from gateway.fix.timestamps import (
    format_utc_timestamp,
    format_utc_timestamp_s,
    format_utc_timestamp_us,
    parse_utc_timestamp,
)

__all__ = [
    "DATA_LENGTH_TAGS",
    "DATA_TAGS",
    "EncodeError",
    "FieldError",
    "FixCodecError",
    "FixMessage",
    "FixParser",
    "Garbled",
    "GarbledError",
    "GroupError",
    "MessageTemplate",
    "TimestampError",
    "decode",
    "encode",
    "encode_body",
    "format_utc_timestamp",
    "format_utc_timestamp_s",
    "format_utc_timestamp_us",
    "frame",
    "parse_utc_timestamp",
]
