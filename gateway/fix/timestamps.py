"""UTCTimestamp (``YYYYMMDD-HH:MM:SS[.sss|.ssssss|.sssssssss]``) to and from ns since the epoch.

Formatting caches the text of the current second, so stamping SendingTime on a burst of messages
costs one ``%`` format each. Parsing validates every part (calendar dates, a leap second ``60``
is accepted and counted as the next second) and raises :class:`TimestampError`.
"""

from __future__ import annotations

import calendar
import time

from gateway.fix.errors import TimestampError

_NS = 1_000_000_000
_cached: tuple[int, bytes] = (-1, b"")


def _second(seconds: int) -> bytes:
    global _cached
    cached = _cached
    if cached[0] == seconds:
        return cached[1]
    if seconds < 0:
        raise TimestampError(f"time before the epoch: {seconds} s")
    try:
        text = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds)).encode("ascii")
    except (OverflowError, OSError, ValueError) as exc:
        raise TimestampError(f"time out of range: {seconds} s") from exc
    if len(text) != 17:
        raise TimestampError(f"time out of range: {seconds} s")
    _cached = (seconds, text)
    return text


def format_utc_timestamp(ns: int) -> bytes:
    """``YYYYMMDD-HH:MM:SS.sss`` (milliseconds, truncated) for ``ns`` since the epoch."""
    seconds, rest = divmod(ns, _NS)
    return b"%b.%03d" % (_second(seconds), rest // 1_000_000)


def format_utc_timestamp_us(ns: int) -> bytes:
    """``YYYYMMDD-HH:MM:SS.ssssss`` (microseconds, truncated) for ``ns`` since the epoch."""
    seconds, rest = divmod(ns, _NS)
    return b"%b.%06d" % (_second(seconds), rest // 1_000)


def format_utc_timestamp_s(ns: int) -> bytes:
    """``YYYYMMDD-HH:MM:SS`` (whole seconds, truncated) for ``ns`` since the epoch."""
    return _second(ns // _NS)


_FRACTION_SCALE = {0: 0, 3: 1_000_000, 6: 1_000, 9: 1}


def parse_utc_timestamp(value: bytes | str) -> int:
    """Nanoseconds since the epoch of a UTCTimestamp with 0, 3, 6 or 9 fractional digits."""
    raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    n = len(raw)
    if n < 17 or raw[8:9] != b"-" or raw[11:12] != b":" or raw[14:15] != b":":
        raise TimestampError(f"not a UTCTimestamp: {raw!r}")
    date, hh, mm, ss = raw[0:8], raw[9:11], raw[12:14], raw[15:17]
    if n == 17:
        fraction = b""
    elif raw[17:18] == b"." and n - 18 in _FRACTION_SCALE and n > 18:
        fraction = raw[18:]
    else:
        raise TimestampError(f"not a UTCTimestamp: {raw!r}")
    for part in (date, hh, mm, ss, fraction):
        if part and not part.isdigit():
            raise TimestampError(f"not a UTCTimestamp: {raw!r}")
    year, month, day = int(date[0:4]), int(date[4:6]), int(date[6:8])
    hour, minute, second = int(hh), int(mm), int(ss)
    if not (
        year >= 1970
        and 1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 60
    ):
        raise TimestampError(f"UTCTimestamp out of range: {raw!r}")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    nanos = int(fraction) * _FRACTION_SCALE[len(fraction)] if fraction else 0
    return seconds * _NS + nanos


def is_utc_timestamp(value: bytes) -> bool:
    """Whether :func:`parse_utc_timestamp` takes ``value``: the data dictionary checks
    UTCTimestamp fields with it, so that a value validation accepts is one the venue can read
    (a pattern alone would let through 30 February or a fraction of one digit)."""
    try:
        parse_utc_timestamp(value)
    except TimestampError:
        return False
    return True
