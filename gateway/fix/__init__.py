"""FIX 4.4: the venue's FIX gateway.

- ``codec``: the wire format (framing by BodyLength, CheckSum, data fields, groups, encoding,
  templates), ``timestamps``, and ``errors`` (bad input is a :class:`Garbled` item or a
  :class:`FixCodecError`, never a bare exception);
- ``dictionary``: QuickFIX-format data dictionaries and the validation of every inbound message;
- ``session``, ``store``, ``acceptor``: the session layer, its message store, the TCP/TLS
  acceptor;
- ``application``, ``orders``, ``marketdata``, ``mapping``: what runs behind the sessions
  (order entry, drop copy, market data, the security list) and the FIX values of the engine's
  enumerations (units convert through ``engine.units``, requests through ``gateway.edge``);
  ``echo``: the conformance profile's application.
- ``config``: the ``[fix]`` section of the configuration file and its ``[[fix.sessions]]``.

Imports nothing of the venue. The per-message modules (codec, dictionary, session, orders,
timestamps) are compiled with the engine's mypyc build (``engine/_native.py``) and load
compiled whenever the engine does.
"""

from engine._native import activate_package as _activate

#: True when the compiled gateway modules are in use.
NATIVE = _activate("gateway/fix", __path__)

from gateway.fix.codec import (  # noqa: E402
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
from gateway.fix.errors import (  # noqa: E402
    EncodeError,
    FieldError,
    FixCodecError,
    Garbled,
    GarbledError,
    GroupError,
    TimestampError,
)
from gateway.fix.timestamps import (  # noqa: E402
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
