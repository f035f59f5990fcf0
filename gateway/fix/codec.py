"""FIX 4.4 wire codec: framing by BodyLength, CheckSum verification, fields, encoding.

Parsing (:class:`FixParser`) is incremental over a TCP byte stream. A frame is
``8=<BeginString>SOH 9=<BodyLength>SOH <body> 10=NNN SOH`` where the body is exactly BodyLength
bytes, counted from after the SOH that ends field 9 up to and including the SOH before ``10=``,
and NNN is the sum of every byte before ``10=`` modulo 256, in three digits. Anything else is
reported as a :class:`Garbled` item and skipped by resynchronising on the next ``8=FIX``, so a
valid message following garbage is never lost. Garbage costs its sender, not the venue: the next
place a frame could start is found by C-level searches (a ``8=FIX`` with ``SOH 9=`` within reach),
never byte by byte or marker by marker, and garbled stretches that follow one another come out
as one item.

Values are bytes; tags are integers. A frame whose length and checksum are right is a message
even when a field in it is not: an empty value, or a tag of 0 or below, comes through as it is,
for the session layer to answer with a Reject (SessionRejectReason 4 or 0); only a tag that is
not a number makes the frame garbled. A data field (RawData 96, Signature 89, ...) preceded by its
length field is read by that length and may contain SOH and ``=``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from zlib import adler32

from gateway.fix.errors import EncodeError, FieldError, Garbled, GarbledError, GroupError

SOH = b"\x01"
_SOH = 1
DEFAULT_BEGIN_STRING = b"FIX.4.4"
DEFAULT_MAX_BODY_LENGTH = 64 * 1024

#: Length field -> the data field it announces (FIX 4.4 fields of type Length/data).
DATA_LENGTH_TAGS: dict[int, int] = {
    90: 91,  # SecureDataLen -> SecureData
    93: 89,  # SignatureLength -> Signature
    95: 96,  # RawDataLength -> RawData
    212: 213,  # XmlDataLen -> XmlData
    348: 349,  # EncodedIssuerLen -> EncodedIssuer
    350: 351,  # EncodedSecurityDescLen -> EncodedSecurityDesc
    352: 353,  # EncodedListExecInstLen -> EncodedListExecInst
    354: 355,  # EncodedTextLen -> EncodedText
    356: 357,  # EncodedSubjectLen -> EncodedSubject
    358: 359,  # EncodedHeadlineLen -> EncodedHeadline
    360: 361,  # EncodedAllocTextLen -> EncodedAllocText
    362: 363,  # EncodedUnderlyingIssuerLen -> EncodedUnderlyingIssuer
    364: 365,  # EncodedUnderlyingSecurityDescLen -> EncodedUnderlyingSecurityDesc
    445: 446,  # EncodedListStatusTextLen -> EncodedListStatusText
    618: 619,  # EncodedLegIssuerLen -> EncodedLegIssuer
    621: 622,  # EncodedLegSecurityDescLen -> EncodedLegSecurityDesc
}
DATA_TAGS: frozenset[int] = frozenset(DATA_LENGTH_TAGS.values())
_LENGTH_TAG_SET: frozenset[int] = frozenset(DATA_LENGTH_TAGS)

# Tags as they appear on the wire -> int, filled by the general field reader (bounded).
_TAG_CACHE: dict[bytes, int] = {}
_TAG_CACHE_MAX = 10_000
# Every byte except "=" and SOH: deleting them leaves the separators, which must alternate.
_NOT_SEPARATORS = bytes(b for b in range(256) if b not in (0x01, 0x3D))
_MAX_BODY_LENGTH_DIGITS = 9
_MAX_BEGIN_STRING = 32  # "8=FIXT.1.1" and the like, with room

Value = bytes | str | int
Field = tuple[int, bytes]


class FixMessage:
    """A parsed message: every field in wire order (header 8, 9 and trailer 10 included).

    ``get`` answers the first occurrence of a tag in O(1) through an index built on first use;
    ``fields`` keeps repeating groups in order.
    """

    __slots__ = ("_index", "fields", "msg_type", "raw")

    def __init__(self, fields: list[Field], raw: bytes) -> None:
        self.fields = fields
        self.raw = raw
        self.msg_type: bytes = fields[2][1]
        self._index: dict[int, bytes] | None = None

    def __repr__(self) -> str:
        return f"FixMessage({self.raw.replace(SOH, b'|')!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FixMessage) and other.fields == self.fields

    __hash__ = None  # type: ignore[assignment]

    def get(self, tag: int) -> bytes | None:
        """The value of the first field with ``tag``, or None."""
        index = self._index
        if index is None:
            index = self._index = dict(reversed(self.fields))
        return index.get(tag)

    def index(self) -> dict[int, bytes]:
        """tag -> value of its first occurrence; for reading many fields on the hot path
        (``get = msg.index().get``). Do not modify it."""
        index = self._index
        if index is None:
            index = self._index = dict(reversed(self.fields))
        return index

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, int) and self.get(tag) is not None

    def get_all(self, tag: int) -> list[bytes]:
        """Every value of ``tag``, in wire order."""
        return [v for t, v in self.fields if t == tag]

    def require(self, tag: int) -> bytes:
        """The value of ``tag``; :class:`FieldError` when it is missing."""
        value = self.get(tag)
        if value is None:
            raise FieldError(f"required tag {tag} missing")
        return value

    def get_str(self, tag: int) -> str | None:
        """The value of ``tag`` decoded as Latin-1 (ASCII is a subset), or None."""
        value = self.get(tag)
        return None if value is None else value.decode("latin-1")

    def get_int(self, tag: int) -> int | None:
        """The value of ``tag`` as an integer (optional leading ``-``), or None when absent."""
        value = self.get(tag)
        if value is None:
            return None
        return _to_int(tag, value)

    def group(
        self, count_tag: int, delimiter_tag: int, member_tags: Iterable[int]
    ) -> list[list[Field]]:
        """The entries of the repeating group counted by ``count_tag``, each in wire order.

        Every entry starts with ``delimiter_tag``; an entry holds the fields that follow it while
        their tags are in ``member_tags`` (the delimiter included or not). The group ends at the
        first other tag. :class:`GroupError` when the number of entries differs from the count,
        or the first field after the count is not the delimiter. Absent count: no entries.
        """
        members = set(member_tags)
        members.add(delimiter_tag)
        fields = self.fields
        start = next((i for i, field in enumerate(fields) if field[0] == count_tag), -1)
        if start < 0:
            return []
        count = _to_int(count_tag, fields[start][1])
        if count < 0:
            raise GroupError(f"tag {count_tag}: negative group count {count}")
        entries: list[list[Field]] = []
        for tag, value in fields[start + 1 :]:
            if tag == delimiter_tag:
                entries.append([(tag, value)])
            elif tag in members and entries:
                entries[-1].append((tag, value))
            else:
                break
        if len(entries) != count:
            raise GroupError(
                f"tag {count_tag}: count {count} but {len(entries)} entries "
                f"starting with tag {delimiter_tag}"
            )
        return entries


def _to_int(tag: int, value: bytes) -> int:
    digits = value[1:] if value[:1] == b"-" else value
    if not digits.isdigit():
        raise FieldError(f"tag {tag}: not an integer: {value!r}")
    return int(value)


# -- parsing -----------------------------------------------------------------------------------


def _byte_sum(data: bytes, end: int | None = None) -> int:
    """The sum of the bytes of ``data[:end]`` modulo 256 (the CheckSum).

    zlib.adler32 started at 0 keeps the sum of the bytes modulo 65521 in its low 16 bits: the
    exact sum for up to 256 bytes, or 515 ASCII bytes (most FIX messages, in one call); longer
    data is summed 256 bytes at a time.
    """
    n = len(data) if end is None else end
    view = memoryview(data)[:n]
    if n <= 256 or (n <= 515 and data.isascii()):
        return adler32(view, 0) & 0xFF
    total = 0
    for i in range(0, n, 256):
        total += adler32(view[i : i + 256], 0) & 0xFFFF
    return total & 0xFF


def _read_fields(frame: bytes) -> list[Field] | str:
    """The fields of a framed, checksummed message, or the reason it is malformed.

    Fast path, all in C: when the separators alternate ``=`` SOH ``=`` SOH (no value holds ``=``
    or SOH), every tag has been seen before and none announces a data field, the frame is split
    in one go. Anything else goes through the general reader, which validates and honours data
    fields.
    """
    separators = frame.translate(None, _NOT_SEPARATORS)
    if separators == b"=\x01" * (len(separators) >> 1):
        items = frame.replace(SOH, b"=").split(b"=")
        values = items[1::2]
        try:
            tags = list(map(_TAG_CACHE.__getitem__, items[0:-1:2]))
        except KeyError:
            pass
        else:
            if _LENGTH_TAG_SET.isdisjoint(tags):
                return list(zip(tags, values, strict=True))
    return _read_fields_with_data(frame)


def _read_fields_with_data(frame: bytes) -> list[Field] | str:
    fields: list[Field] = []
    pos = 0
    end = len(frame)
    data_tag: int | None = None
    data_len = 0
    while pos < end:
        eq = frame.find(b"=", pos)
        if eq < 0:
            return f"malformed field {frame[pos : pos + 32]!r}"
        tag_bytes = frame[pos:eq]
        cached = _TAG_CACHE.get(tag_bytes)
        if cached is not None:
            tag = cached
        elif tag_bytes.lstrip(b"-").isdigit() and tag_bytes.count(b"-") <= 1:
            tag = int(tag_bytes)  # 0 and negative tags are the session layer's to reject
            if len(_TAG_CACHE) < _TAG_CACHE_MAX:
                _TAG_CACHE[tag_bytes] = tag
        else:
            return f"malformed field {frame[pos : pos + 32]!r}"
        if tag == data_tag:
            stop = eq + 1 + data_len
            if stop >= end or frame[stop] != _SOH:
                return f"data field {tag} does not match its length {data_len}"
        else:
            stop = frame.find(SOH, eq + 1)
            if stop < 0:
                return f"malformed field {frame[pos : pos + 32]!r}"
        value = frame[eq + 1 : stop]
        fields.append((tag, value))
        announced = DATA_LENGTH_TAGS.get(tag)
        if announced is not None:
            if not value.isdigit():
                return f"length field {tag} is not a number: {value[:16]!r}"
            data_tag, data_len = announced, int(value)
        else:
            data_tag = None
        pos = stop + 1
    return fields


class FixParser:
    """Incremental parser of a FIX byte stream.

    ``feed(data)`` returns, in stream order, every complete :class:`FixMessage` and every
    :class:`Garbled` stretch the data completes; incomplete input waits for the next feed.
    Framing follows QuickFIX: a frame runs from ``8=`` to the first CheckSum field at or after the
    end its BodyLength announces, and a frame found wrong (BodyLength, CheckSum, a malformed
    field) is skipped whole. A BodyLength that is too long therefore swallows the message after
    it, as it does in QuickFIX (the peer resends it after the ResendRequest its gap causes).
    Garbage outside frames is skipped up to the next ``8=FIX``.
    """

    __slots__ = (
        "_any_begin_string",
        "_buf",
        "_garbled_end",
        "_garbled_reason",
        "_garbled_start",
        "_max_body_length",
        "_prefix",
        "_start_marker",
        "garbled_count",
    )

    def __init__(
        self,
        begin_string: bytes = DEFAULT_BEGIN_STRING,
        max_body_length: int = DEFAULT_MAX_BODY_LENGTH,
        *,
        any_begin_string: bool = False,
    ) -> None:
        """``any_begin_string``: frame messages of every ``8=FIX...`` version, not only
        ``begin_string``, so that a session can answer a wrong version with a Logout (the
        session layer compares field 8) instead of ignoring it as garbled."""
        self._prefix = b"8=" + begin_string + SOH + b"9="
        self._start_marker = b"8=FIX"
        self._max_body_length = max_body_length
        self._any_begin_string = any_begin_string
        self._buf = bytearray()
        # The run of garbled stretches not yet reported: one item for all of them.
        self._garbled_reason = ""
        self._garbled_start = -1
        self._garbled_end = -1
        #: Garbled frames and stretches of garbage found so far, before runs are merged into one
        #: item: what a limit on a counterparty's garbled messages counts.
        self.garbled_count = 0

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[FixMessage | Garbled]:
        buf = self._buf
        buf += data
        out: list[FixMessage | Garbled] = []
        pos = 0
        n = len(buf)
        prefix = self._prefix
        prefix_len = len(prefix)
        marker = self._start_marker
        while pos < n:
            head = prefix_len if buf.startswith(prefix, pos) else 0
            if not head and self._any_begin_string and buf.startswith(marker, pos):
                version_end = buf.find(SOH, pos, pos + _MAX_BEGIN_STRING)
                if version_end < 0 or version_end + 3 > n:
                    if n - pos < _MAX_BEGIN_STRING:
                        break  # BeginString still arriving
                    pos = self._garbled(out, pos, "BeginString (8) malformed")
                    continue
                if buf.find(b"=", pos + 2, version_end) >= 0:
                    # "8=FIX8=FIX.4.4": no BeginString holds "=", a frame may start later on
                    pos = self._garbled(out, pos, "BeginString (8) malformed")
                    continue
                if buf.startswith(b"9=", version_end + 1):
                    head = version_end + 3 - pos
            if head:
                # 9=<digits>SOH
                plen = head
                soh = buf.find(SOH, pos + plen, pos + plen + _MAX_BODY_LENGTH_DIGITS + 1)
                if soh < 0:
                    if n - (pos + plen) <= _MAX_BODY_LENGTH_DIGITS:
                        break  # BodyLength still arriving
                    pos = self._garbled(out, pos, "BodyLength (9) malformed")
                    continue
                digits = bytes(buf[pos + plen : soh])
                if not digits.isdigit():
                    pos = self._garbled(out, pos, "BodyLength (9) malformed")
                    continue
                body_length = int(digits)
                if body_length > self._max_body_length:
                    pos = self._garbled(out, pos, "BodyLength (9) above the maximum")
                    continue
                cs = soh + 1 + body_length
                if cs > n:
                    break  # body still arriving
                # As QuickFIX frames: the message ends at the first CheckSum field at or after
                # the end BodyLength announces. A BodyLength that is too short is found wrong
                # below; one that is too long swallows what follows up to the next CheckSum.
                ten = buf.find(b"\x0110=", cs - 1)
                if ten < 0 or (end_soh := buf.find(SOH, ten + 4)) < 0:
                    if n - cs > self._max_body_length:
                        pos = self._garbled(out, pos, "no CheckSum (10) after BodyLength (9)")
                        continue
                    break  # the CheckSum field still arriving
                frame_end = end_soh + 1
                if ten != cs - 1:
                    pos = self._garbled_frame(
                        out, pos, frame_end, "BodyLength (9) does not end on CheckSum (10)"
                    )
                    continue
                frame = bytes(buf[pos:frame_end])
                checksum = frame[ten + 4 - pos : -1]
                if (
                    len(checksum) != 3
                    or not checksum.isdigit()
                    or int(checksum) != _byte_sum(frame, cs - pos)
                ):
                    pos = self._garbled_frame(out, pos, frame_end, "CheckSum (10) mismatch")
                    continue
                fields = _read_fields(frame)
                if isinstance(fields, str):
                    pos = self._garbled_frame(out, pos, frame_end, fields)
                    continue
                if len(fields) < 4 or fields[2][0] != 35:
                    pos = self._garbled_frame(
                        out, pos, frame_end, "MsgType (35) is not the third field"
                    )
                    continue
                self._flush_garbled(out)
                out.append(FixMessage(fields, frame))
                pos = frame_end
                continue
            if n - pos < prefix_len and prefix.startswith(buf[pos:n]):
                break  # the start of a frame, still arriving
            if buf.startswith(marker, pos):
                pos = self._garbled(out, pos, "wrong BeginString (8)")
                continue
            # garbage up to the next frame start
            nxt = self._next_start(pos)
            if nxt == pos:
                break
            self._add_garbled(out, "no frame start", pos, nxt)
            pos = nxt
        self._flush_garbled(out)
        if pos:
            del buf[:pos]
        return out

    def _garbled_frame(
        self, out: list[FixMessage | Garbled], pos: int, end: int, reason: str
    ) -> int:
        """Report the framed bytes ``pos:end`` as garbled; the new position."""
        self._add_garbled(out, reason, pos, end)
        return end

    def _garbled(self, out: list[FixMessage | Garbled], pos: int, reason: str) -> int:
        """Report the frame at ``pos`` as garbled up to the next frame start; the new position."""
        nxt = max(self._next_start(pos + 1), pos + 1)
        self._add_garbled(out, reason, pos, nxt)
        return nxt

    def _next_start(self, start: int) -> int:
        """The first place at or after ``start`` where a frame could begin, or where the rest of
        the stream could still make one (the end, less a partial ``8=FIX``).

        A frame begins with ``8=FIX``, its BeginString and ``SOH 9=`` within
        ``_MAX_BEGIN_STRING`` bytes: a marker further than that before the next ``SOH 9=`` can
        never be one. Skipping those in one search keeps a stream of repeated ``8=FIX`` as cheap
        as any other garbage (it was one loop turn and one item per five bytes)."""
        buf = self._buf
        n = len(buf)
        marker = self._start_marker
        body = buf.find(b"\x019=", start)
        reach = (n if body < 0 else body) - _MAX_BEGIN_STRING - 3
        nxt = buf.find(marker, max(start, reach))
        if nxt < 0:
            nxt = max(n - _partial_marker(buf, marker), start)
        return nxt

    def _add_garbled(
        self, out: list[FixMessage | Garbled], reason: str, pos: int, end: int
    ) -> None:
        """Report ``pos:end`` as garbled: with the stretch before when it follows it (the run is
        copied out once, when it ends), else as a new item."""
        self.garbled_count += 1
        if self._garbled_start >= 0 and self._garbled_end == pos:
            self._garbled_end = end
            return
        self._flush_garbled(out)
        self._garbled_reason, self._garbled_start, self._garbled_end = reason, pos, end

    def _flush_garbled(self, out: list[FixMessage | Garbled]) -> None:
        start = self._garbled_start
        if start >= 0:
            out.append(Garbled(self._garbled_reason, bytes(self._buf[start : self._garbled_end])))
            self._garbled_start = self._garbled_end = -1


def _partial_marker(buf: bytearray, marker: bytes) -> int:
    """How many bytes at the end of ``buf`` could be the beginning of ``marker``."""
    for k in range(min(len(marker) - 1, len(buf)), 0, -1):
        if buf.endswith(marker[:k]):
            return k
    return 0


def decode(
    data: bytes,
    begin_string: bytes = DEFAULT_BEGIN_STRING,
    max_body_length: int = DEFAULT_MAX_BODY_LENGTH,
) -> FixMessage:
    """Exactly one message; :class:`GarbledError` for anything else."""
    parser = FixParser(begin_string, max_body_length)
    items = parser.feed(data)
    if len(items) == 1 and isinstance(items[0], FixMessage) and len(items[0].raw) == len(data):
        return items[0]
    for item in items:
        if isinstance(item, Garbled):
            raise GarbledError(item.reason, item.raw)
    if parser.buffered:
        raise GarbledError("incomplete message: BodyLength (9) beyond the data", bytes(data))
    raise GarbledError("more than one message", bytes(data))


# -- encoding ----------------------------------------------------------------------------------

_TAG_PREFIX: dict[int, bytes] = {}


def _tag_prefix(tag: int) -> bytes:
    prefix = _TAG_PREFIX.get(tag)
    if prefix is None:
        if type(tag) is not int or tag <= 0:
            raise EncodeError(f"bad tag {tag!r}")
        if tag in (8, 9, 10):
            raise EncodeError(f"tag {tag} is generated by the encoder")
        prefix = _TAG_PREFIX[tag] = b"%d=" % tag
    return prefix


def _value_bytes(tag: int, value: object) -> bytes:
    if isinstance(value, bytes):
        out = value
    elif isinstance(value, str):
        try:
            out = value.encode("latin-1")
        except UnicodeEncodeError as exc:
            raise EncodeError(f"tag {tag}: value not Latin-1: {value!r}") from exc
    elif isinstance(value, int) and not isinstance(value, bool):
        out = b"%d" % value
    else:
        raise EncodeError(f"tag {tag}: value of type {type(value).__name__}")
    if not out:
        raise EncodeError(f"tag {tag}: empty value")
    return out


def encode_body(fields: Sequence[tuple[int, Value]]) -> bytes:
    """The body (MsgType first) of a message: tag=value SOH for every field, validated.

    The fields are read as plain objects and checked here, so that a wrong type is an
    :class:`EncodeError` whether this module runs interpreted or compiled (where a typed
    parameter would raise ``TypeError`` at the call)."""
    items: Sequence[object] = fields
    parts: list[bytes] = []
    data_tag = -1
    data_len = 0
    first = True
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise EncodeError(f"a field must be a (tag, value) pair, not {item!r}")
        tag_obj: object = item[0]
        value: object = item[1]
        if type(tag_obj) is not int:
            raise EncodeError(f"bad tag {tag_obj!r}")
        tag: int = tag_obj
        if first and tag != 35:
            raise EncodeError("MsgType (35) must be the first field")
        first = False
        raw = _value_bytes(tag, value)
        if tag == data_tag:
            if len(raw) != data_len:
                raise EncodeError(f"data field {tag}: length {len(raw)}, announced {data_len}")
        elif SOH in raw:
            raise EncodeError(f"tag {tag}: SOH in a value that is not a data field")
        elif tag in DATA_TAGS:
            raise EncodeError(f"data field {tag} must follow its length field")
        announced = DATA_LENGTH_TAGS.get(tag)
        if announced is not None:
            if not raw.isdigit():
                raise EncodeError(f"length field {tag}: not a length: {raw!r}")
            data_tag, data_len = announced, int(raw)
        else:
            data_tag = -1
        parts.append(_tag_prefix(tag))
        parts.append(raw)
        parts.append(SOH)
    if first:
        raise EncodeError("MsgType (35) must be the first field")
    return b"".join(parts)


def frame(body: bytes, begin_string: bytes = DEFAULT_BEGIN_STRING) -> bytes:
    """``body`` wrapped in BeginString, BodyLength and CheckSum."""
    head = b"8=%b\x019=%d\x01" % (begin_string, len(body))
    return b"%b%b10=%03d\x01" % (head, body, (_byte_sum(head) + _byte_sum(body)) & 255)


def encode(
    fields: Sequence[tuple[int, Value]], begin_string: bytes = DEFAULT_BEGIN_STRING
) -> bytes:
    """A complete message from its fields (35 first, then 49, 56, 34, 52, ...).

    8, 9 and 10 are generated. Values are bytes, str (Latin-1) or int. A data field must follow
    its length field, whose value must equal the data's length.
    """
    return frame(encode_body(fields), begin_string)


class MessageTemplate:
    """A message whose fixed fields are rendered once; only the slots are filled per message.

    ``MessageTemplate([(35, b"8"), (49, b"VENUE"), (56, None), (34, int), ...])``: a value of
    ``None`` is a bytes slot, ``int`` an integer slot; ``encode(*values)`` takes the slots' values
    in order. Values are checked for SOH (one count over the body) and emptiness; data fields
    cannot be slots.
    """

    __slots__ = ("_fields", "_format", "_head_format", "_slots")

    def __init__(
        self,
        fields: Sequence[tuple[int, Value | type[int] | None]],
        begin_string: bytes = DEFAULT_BEGIN_STRING,
    ) -> None:
        if not fields or fields[0][0] != 35 or fields[0][1] is None or fields[0][1] is int:
            raise EncodeError("MsgType (35) must be the first field, and fixed")
        parts: list[bytes] = []
        slots = 0
        for tag, value in fields:
            if tag in DATA_TAGS or tag in DATA_LENGTH_TAGS:
                raise EncodeError(f"data and length fields ({tag}) cannot be in a template")
            parts.append(_tag_prefix(tag))
            if value is None:
                parts.append(b"%b")
                slots += 1
            elif value is int:
                parts.append(b"%d")
                slots += 1
            else:
                assert not isinstance(value, type)
                raw = _value_bytes(tag, value)
                if SOH in raw:
                    raise EncodeError(f"tag {tag}: SOH in a value that is not a data field")
                parts.append(raw.replace(b"%", b"%%"))
            parts.append(SOH)
        self._format = b"".join(parts)
        self._fields = len(fields)
        self._slots = slots
        self._head_format = b"8=" + begin_string.replace(b"%", b"%%") + b"\x019=%d\x01"

    def encode(self, *values: bytes | int) -> bytes:
        if len(values) != self._slots:
            raise EncodeError(f"template has {self._slots} slots, {len(values)} values given")
        if b"" in values:
            raise EncodeError("empty value")
        try:
            body = self._format % values
        except TypeError as exc:
            raise EncodeError(f"value of the wrong type for a slot: {exc}") from exc
        if body.count(SOH) != self._fields:
            raise EncodeError("SOH in a value")
        head = self._head_format % len(body)
        return b"%b%b10=%03d\x01" % (head, body, (_byte_sum(head) + _byte_sum(body)) & 255)
