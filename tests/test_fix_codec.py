"""The FIX 4.4 wire codec: framing, checksums, resynchronisation, data fields, groups, encoding,
templates and timestamps."""

from __future__ import annotations

import base64
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fix import (
    EncodeError,
    FieldError,
    FixMessage,
    FixParser,
    Garbled,
    GarbledError,
    GroupError,
    MessageTemplate,
    TimestampError,
    decode,
    encode,
    format_utc_timestamp,
    format_utc_timestamp_s,
    format_utc_timestamp_us,
    parse_utc_timestamp,
)
from gateway.fix.codec import _byte_sum, _read_fields, _read_fields_with_data

SENDING_TIME = b"20240315-12:34:56.789"


def header(msg_type: bytes, seq: int) -> list[tuple[int, bytes | str | int]]:
    return [(35, msg_type), (49, "CLIENT1"), (56, "VENUE"), (34, seq), (52, SENDING_TIME)]


def new_order(seq: int, cl_ord_id: str = "ord-1") -> bytes:
    return encode(
        [
            *header(b"D", seq),
            (11, cl_ord_id),
            (55, "BTC-USDT"),
            (54, 1),
            (60, SENDING_TIME),
            (38, "0.5"),
            (40, 2),
            (44, "65000.10"),
            (59, 1),
        ]
    )


def logon_signed(seq: int, signature: bytes) -> bytes:
    return encode(
        [
            *header(b"A", seq),
            (98, 0),
            (108, 30),
            (95, len(signature)),
            (96, signature),
            (141, "Y"),
        ]
    )


def market_data(seq: int) -> bytes:
    return encode(
        [
            *header(b"W", seq),
            (262, "req-1"),
            (55, "BTC-USDT"),
            (268, 3),
            (269, 0),
            (270, "65000"),
            (271, "1.5"),
            (269, 1),
            (270, "65001"),
            (271, "2"),
            (290, 1),
            (269, 2),
            (270, "65000.5"),
            (58, "after the group"),
        ]
    )


def messages_only(items: list[FixMessage | Garbled]) -> list[bytes]:
    return [item.raw for item in items if isinstance(item, FixMessage)]


def garbled_only(items: list[FixMessage | Garbled]) -> list[Garbled]:
    return [item for item in items if isinstance(item, Garbled)]


def handmade(body: bytes) -> bytes:
    """A frame around ``body`` with a correct BodyLength and CheckSum, built without the encoder."""
    return with_checksum(b"8=FIX.4.4\x019=%d\x01" % len(body) + body)


def with_checksum(body_and_header: bytes) -> bytes:
    """Append a correct 10= to bytes that end with the SOH before it."""
    return body_and_header + b"10=%03d\x01" % (sum(body_and_header) % 256)


# -- round trips ---------------------------------------------------------------------------------


def test_encode_then_decode_round_trips_fields_in_order() -> None:
    raw = new_order(7)
    msg = decode(raw)
    assert msg.msg_type == b"D"
    assert msg.raw == raw
    body = [(t, v) for t, v in msg.fields if t not in (8, 9, 10)]
    assert body == [
        (35, b"D"),
        (49, b"CLIENT1"),
        (56, b"VENUE"),
        (34, b"7"),
        (52, SENDING_TIME),
        (11, b"ord-1"),
        (55, b"BTC-USDT"),
        (54, b"1"),
        (60, SENDING_TIME),
        (38, b"0.5"),
        (40, b"2"),
        (44, b"65000.10"),
        (59, b"1"),
    ]
    assert msg.fields[0] == (8, b"FIX.4.4")
    assert msg.fields[1] == (9, str(len(raw) - raw.index(b"35=") - 7).encode())
    assert msg.get(44) == b"65000.10"
    assert msg.get(999) is None
    assert msg.get_str(55) == "BTC-USDT"
    assert msg.get_int(34) == 7
    assert 11 in msg and 999 not in msg
    assert encode([(t, v) for t, v in msg.fields if t not in (8, 9, 10)]) == raw


def test_get_answers_the_first_occurrence_and_get_all_every_one() -> None:
    msg = decode(market_data(3))
    assert msg.get(269) == b"0"
    assert msg.get_all(269) == [b"0", b"1", b"2"]
    assert msg.get_all(270) == [b"65000", b"65001", b"65000.5"]


def test_require_and_get_int_refuse_clearly() -> None:
    msg = decode(new_order(1))
    with pytest.raises(FieldError, match="999"):
        msg.require(999)
    with pytest.raises(FieldError, match="not an integer"):
        msg.get_int(38)  # "0.5"
    assert msg.get_int(999) is None


# -- checksum against an independent encoder -----------------------------------------------------


def test_checksum_and_body_length_match_simplefix() -> None:
    simplefix = pytest.importorskip("simplefix")
    ref = simplefix.FixMessage()
    ref.append_pair(8, "FIX.4.4", header=True)
    for tag, value in [
        (35, "D"),
        (49, "CLIENT1"),
        (56, "VENUE"),
        (34, "7"),
        (52, SENDING_TIME.decode()),
        (11, "ord-1"),
        (55, "BTC-USDT"),
        (54, "1"),
        (60, SENDING_TIME.decode()),
        (38, "0.5"),
        (40, "2"),
        (44, "65000.10"),
        (59, "1"),
    ]:
        ref.append_pair(tag, value)
    assert new_order(7) == ref.encode()


# Published example messages (the FIX article's logon and execution report), with their 9= and 10=.
KNOWN = [
    "8=FIX.4.2|9=65|35=A|49=SERVER|56=CLIENT|34=177|52=20090107-18:15:16|98=0|108=30|10=062|",
    "8=FIX.4.2|9=178|35=8|49=PHLX|56=PERS|52=20071123-05:30:00.000|11=ATOMNOCCC9990900|20=3|"
    "150=E|39=E|55=MSFT|167=CS|54=1|38=15|40=2|44=15|58=PHLX EQUITY TESTING|59=0|47=C|32=0|31=0|"
    "151=15|14=0|6=0|10=128|",
]


@pytest.mark.parametrize("text", KNOWN)
def test_body_length_and_checksum_of_known_messages(text: str) -> None:
    raw = text.replace("|", "\x01").encode()
    body = [(int(t), v) for t, _, v in (f.partition("=") for f in text.split("|")[2:-2])]
    assert encode(body, begin_string=b"FIX.4.2") == raw
    msg = decode(raw, begin_string=b"FIX.4.2")
    assert msg.get(10) == raw[-4:-1]
    assert msg.get_int(9) == len(raw) - raw.index(b"35=") - 7


# -- streaming -----------------------------------------------------------------------------------


def stream_of_messages() -> list[bytes]:
    sig = base64.b64encode(bytes(range(64)))
    return [
        new_order(1),
        logon_signed(2, sig),
        market_data(3),
        logon_signed(4, b"a\x01b=c\x0110=000\x01"),
        new_order(5, "x" * 300),
    ]


def test_stream_fed_one_byte_at_a_time_gives_the_same_messages() -> None:
    msgs = stream_of_messages()
    stream = b"".join(msgs)
    parser = FixParser()
    out: list[FixMessage | Garbled] = []
    for i in range(len(stream)):
        out += parser.feed(stream[i : i + 1])
    assert garbled_only(out) == []
    assert messages_only(out) == msgs
    assert parser.buffered == 0


@pytest.mark.parametrize("seed", range(20))
def test_stream_in_random_chunks_gives_the_same_messages(seed: int) -> None:
    rng = random.Random(seed)
    msgs = [rng.choice(stream_of_messages()) for _ in range(30)]
    stream = b"".join(msgs)
    parser = FixParser()
    out: list[FixMessage | Garbled] = []
    pos = 0
    while pos < len(stream):
        size = rng.randint(1, 400)
        out += parser.feed(stream[pos : pos + size])
        pos += size
    assert garbled_only(out) == []
    assert messages_only(out) == msgs
    whole = FixParser().feed(stream)
    assert [m.fields for m in whole if isinstance(m, FixMessage)] == [
        m.fields for m in out if isinstance(m, FixMessage)
    ]


@given(
    noise=st.lists(st.binary(max_size=40), min_size=4, max_size=4),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_valid_messages_survive_any_garbage_between_them(
    noise: list[bytes], cuts: list[int]
) -> None:
    msgs = [new_order(1), logon_signed(2, b"sig\x01nature"), market_data(3)]
    # The noise must not itself hold a frame start, or it could swallow what follows as a body.
    noise = [n.replace(b"8=", b"8-") for n in noise]
    # ...nor end with a prefix of one that the next message would complete.
    noise = [n + b"#" if n else n for n in noise]
    stream = noise[0] + msgs[0] + noise[1] + msgs[1] + noise[2] + msgs[2] + noise[3]
    parser = FixParser()
    out: list[FixMessage | Garbled] = []
    prev = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        out += parser.feed(stream[prev:cut])
        prev = cut
    assert messages_only(out) == msgs
    skipped = b"".join(g.raw for g in garbled_only(out))
    assert len(skipped) + sum(map(len, msgs)) + parser.buffered == len(stream)


# -- garbled input -------------------------------------------------------------------------------


def corrupt_checksum(raw: bytes) -> bytes:
    cs = int(raw[-4:-1])
    return raw[:-4] + b"%03d\x01" % ((cs + 1) % 256)


def set_body_length(raw: bytes, delta: int) -> bytes:
    """The message with BodyLength off by ``delta`` and the checksum recomputed to match."""
    start = raw.index(b"\x019=") + 3
    end = raw.index(b"\x01", start)
    new = raw[:start] + b"%d" % (int(raw[start:end]) + delta) + raw[end : raw.rindex(b"10=")]
    return with_checksum(new)


CASES = {
    "bad checksum": (corrupt_checksum(new_order(1)), "CheckSum"),
    "body length short": (set_body_length(new_order(1), -2), "BodyLength"),
    "body length long": (set_body_length(new_order(1), +2), "BodyLength"),
    "missing checksum": (new_order(1)[: new_order(1).rindex(b"10=")], "BodyLength"),
    "huge body length": (b"8=FIX.4.4\x019=99999999\x0135=D\x01", "maximum"),
    "wrong begin string": (new_order(1).replace(b"FIX.4.4", b"FIX.4.2"), "BeginString"),
    "garbage": (b"hello world\x01\x01=", "no frame start"),
    "malformed body length": (b"8=FIX.4.4\x019=12a\x0135=0\x0110=000\x01", "BodyLength"),
    "msg type not third": (
        handmade(b"49=A\x0135=0\x01"),
        "MsgType",
    ),
    "malformed field": (handmade(b"35=0\x01abc=d\x01"), "malformed"),
    "data longer than announced": (
        handmade(b"35=A\x0195=2\x0196=abc\x01"),
        "data field 96",
    ),
}


#: Cases whose frame, as QuickFIX frames, runs on to the next message's CheckSum and takes it along.
SWALLOWS_NEXT = {"body length long", "missing checksum"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_garbled_input_is_reported_and_the_next_message_parsed(name: str) -> None:
    bad, reason = CASES[name]
    good = new_order(2)
    if name in SWALLOWS_NEXT:
        bad += good
        good = new_order(4)
    for feed_whole in (True, False):
        parser = FixParser()
        stream = bad + good + new_order(3)
        if feed_whole:
            out = parser.feed(stream)
        else:
            out = [item for i in range(len(stream)) for item in parser.feed(stream[i : i + 1])]
        garbled = garbled_only(out)
        assert garbled, name
        assert reason in garbled[0].reason
        assert b"".join(g.raw for g in garbled) == bad
        assert messages_only(out) == [good, new_order(3)]
        assert parser.buffered == 0


def test_empty_values_and_tags_of_zero_or_below_are_kept_for_the_session_to_reject() -> None:
    raw = handmade(b"35=0\x0158=\x010=HI\x01-1=HI\x01")
    for parser_input in (raw, raw + raw):
        out = FixParser().feed(parser_input)
        assert not garbled_only(out)
    msg = decode(raw)
    assert (58, b"") in msg.fields
    assert (0, b"HI") in msg.fields
    assert (-1, b"HI") in msg.fields


@pytest.mark.parametrize("name", sorted(CASES))
def test_decode_raises_garbled_error(name: str) -> None:
    bad, reason = CASES[name]
    with pytest.raises(GarbledError, match=reason.split()[0]) as info:
        decode(bad)
    assert info.value.raw


def test_decode_refuses_two_messages_and_a_partial_one() -> None:
    with pytest.raises(GarbledError):
        decode(new_order(1) + new_order(2))
    with pytest.raises(GarbledError):
        decode(new_order(1)[:-1])


def test_a_buffer_without_a_frame_start_is_discarded_but_a_partial_start_is_kept() -> None:
    parser = FixParser()
    out = parser.feed(b"x" * 100_000 + b"8=FI")
    assert [g.raw for g in garbled_only(out)] == [b"x" * 100_000]
    assert parser.buffered == 4
    out = parser.feed(new_order(1)[4:])
    assert messages_only(out) == [new_order(1)]


def test_huge_body_length_is_refused_without_waiting_for_the_body() -> None:
    parser = FixParser(max_body_length=1000)
    big = new_order(1, "x" * 2000)
    out = parser.feed(big[:40])
    assert [g.reason for g in garbled_only(out)] == ["BodyLength (9) above the maximum"]
    out = parser.feed(big[40:] + new_order(2))
    assert messages_only(out) == [new_order(2)]
    assert FixParser(max_body_length=5000).feed(big)[0] == decode(big)


def test_configurable_begin_string() -> None:
    fixt = encode(header(b"0", 1), begin_string=b"FIXT.1.1")
    assert messages_only(FixParser(begin_string=b"FIXT.1.1").feed(fixt)) == [fixt]
    assert messages_only(FixParser().feed(fixt)) == []
    assert decode(fixt, begin_string=b"FIXT.1.1").fields[0] == (8, b"FIXT.1.1")


# -- data fields ---------------------------------------------------------------------------------


def test_raw_data_holding_soh_and_equals_is_read_by_its_length() -> None:
    data = b"\x0110=123\x01=x=\x01\x0135=D\x01"
    msg = decode(logon_signed(1, data))
    assert msg.get(96) == data
    assert msg.get(95) == str(len(data)).encode()
    assert msg.get(141) == b"Y"
    assert [t for t, _ in msg.fields] == [8, 9, 35, 49, 56, 34, 52, 98, 108, 95, 96, 141, 10]


def test_binance_style_signed_logon() -> None:
    signature = base64.b64encode(bytes(range(200, 256)) + bytes(8))  # ed25519: 64 bytes
    raw = encode(
        [
            (35, "A"),
            (49, "EXAMPLE"),
            (56, "SPOT"),
            (34, 1),
            (52, "20240627-11:17:25.223"),
            (95, len(signature)),
            (96, signature),
            (98, 0),
            (108, 30),
            (141, "Y"),
            (553, "sBRXrJx2DsOraMXOaUovEhgVRcjOvCtQwnWj8VxkOh1xqboS02SPGfKi2h8spZJb"),
            (25035, 2),
        ]
    )
    msg = decode(raw)
    assert msg.get(96) == signature
    assert msg.get_int(25035) == 2


def test_fast_and_general_field_readers_agree() -> None:
    for raw in (new_order(1), market_data(2)):
        fast = _read_fields(raw)
        assert fast == _read_fields_with_data(raw)
        assert isinstance(fast, list) and fast[-1][0] == 10


def test_data_field_without_its_length_field_is_an_ordinary_field() -> None:
    raw = handmade(b"35=A\x0196=abc\x01")
    assert decode(raw).get(96) == b"abc"


def test_length_field_that_is_not_a_number_is_garbled() -> None:
    raw = handmade(b"35=A\x0195=x\x0196=abc\x01")
    with pytest.raises(GarbledError, match="length field 95"):
        decode(raw)


# -- repeating groups ----------------------------------------------------------------------------


def test_repeating_group_entries_in_order() -> None:
    msg = decode(market_data(1))
    entries = msg.group(268, 269, [270, 271, 290])
    assert entries == [
        [(269, b"0"), (270, b"65000"), (271, b"1.5")],
        [(269, b"1"), (270, b"65001"), (271, b"2"), (290, b"1")],
        [(269, b"2"), (270, b"65000.5")],
    ]
    assert msg.group(146, 55, []) == []


def test_repeating_group_with_a_wrong_count_is_refused() -> None:
    raw = market_data(1).replace(b"\x01268=3\x01", b"\x01268=2\x01")
    msg = decode(with_checksum(raw[: raw.rindex(b"10=")]))
    with pytest.raises(GroupError, match="count 2 but 3"):
        msg.group(268, 269, [270, 271, 290])
    with pytest.raises(GroupError, match="count 3 but 1"):
        decode(market_data(1)).group(268, 269, [270])  # 271 ends the group early


# -- encoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ([(49, "A"), (35, "D")], "MsgType"),
        ([(35, "D"), (9, 10)], "generated"),
        ([(35, "D"), (0, "x")], "bad tag"),
        ([(35, "D"), (58, "")], "empty"),
        ([(35, "D"), (58, b"a\x01b")], "SOH"),
        ([(35, "D"), (58, "€")], "Latin-1"),
        ([(35, "D"), (58, 1.5)], "float"),
        ([(35, "D"), (96, b"abc")], "must follow"),
        ([(35, "D"), (95, 4), (96, b"abc")], "announced 4"),
        ([(35, "D"), (95, "x"), (96, b"abc")], "not a length"),
    ],
)
def test_encode_refuses_what_cannot_go_on_the_wire(
    fields: list[tuple[int, object]], match: str
) -> None:
    with pytest.raises(EncodeError, match=match):
        encode(fields)  # type: ignore[arg-type]


@given(
    values=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=20000).filter(lambda t: t not in (8, 9, 10)),
            st.binary(min_size=1, max_size=30).filter(lambda v: b"\x01" not in v),
        ),
        max_size=15,
    )
)
def test_encode_decode_round_trip_of_arbitrary_fields(values: list[tuple[int, bytes]]) -> None:
    from gateway.fix.codec import DATA_LENGTH_TAGS, DATA_TAGS

    fields = [(35, b"D")] + [
        (t, v) for t, v in values if t not in DATA_TAGS and t not in DATA_LENGTH_TAGS
    ]
    raw = encode(fields)
    msg = decode(raw)
    assert [(t, v) for t, v in msg.fields if t not in (8, 9, 10)] == fields


# -- templates -----------------------------------------------------------------------------------

EXEC_REPORT = [
    (35, b"8"),
    (49, b"VENUE"),
    (56, None),
    (34, int),
    (52, None),
    (37, None),
    (11, None),
    (17, None),
    (150, b"F"),
    (39, None),
    (55, None),
    (54, b"1"),
    (38, None),
    (44, None),
    (32, None),
    (31, None),
    (151, None),
    (14, None),
    (6, b"0"),
    (60, None),
]


def exec_report_values(seq: int) -> tuple[bytes | int, ...]:
    return (
        b"CLIENT1",
        seq,
        SENDING_TIME,
        b"O-100%",
        b"ord-1",
        b"E-1",
        b"1",
        b"BTC-USDT",
        b"0.5",
        b"65000.10",
        b"0.2",
        b"65000.10",
        b"0.3",
        b"0.2",
        SENDING_TIME,
    )


def test_template_encodes_exactly_what_encode_does() -> None:
    template = MessageTemplate(EXEC_REPORT)
    values = iter(exec_report_values(42))
    fields = [(tag, next(values) if v is None or v is int else v) for tag, v in EXEC_REPORT]
    assert template.encode(*exec_report_values(42)) == encode(fields)  # type: ignore[arg-type]
    assert decode(template.encode(*exec_report_values(43))).get(34) == b"43"


def test_template_refuses_bad_values() -> None:
    template = MessageTemplate(EXEC_REPORT)
    good = exec_report_values(1)
    with pytest.raises(EncodeError, match="slots"):
        template.encode(*good[:-1])
    with pytest.raises(EncodeError, match="SOH"):
        template.encode(b"A\x01B", *good[1:])
    with pytest.raises(EncodeError, match="empty"):
        template.encode(b"", *good[1:])
    with pytest.raises(EncodeError, match="wrong type"):
        template.encode(good[0], b"1", *good[2:])
    with pytest.raises(EncodeError, match="template"):
        MessageTemplate([(35, b"A"), (95, None), (96, None)])
    with pytest.raises(EncodeError, match="MsgType"):
        MessageTemplate([(35, None)])


# -- timestamps ----------------------------------------------------------------------------------


def test_timestamp_formatting() -> None:
    ns = 1_710_506_096_789_123_456  # 2024-03-15 12:34:56.789123456 UTC
    assert format_utc_timestamp(ns) == b"20240315-12:34:56.789"
    assert format_utc_timestamp_us(ns) == b"20240315-12:34:56.789123"
    assert format_utc_timestamp_s(ns) == b"20240315-12:34:56"
    assert format_utc_timestamp(ns + 1_000_000_000) == b"20240315-12:34:57.789"
    assert format_utc_timestamp(0) == b"19700101-00:00:00.000"
    with pytest.raises(TimestampError):
        format_utc_timestamp(-1)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        (b"20240315-12:34:56", 1_710_506_096_000_000_000),
        (b"20240315-12:34:56.789", 1_710_506_096_789_000_000),
        ("20240315-12:34:56.789123", 1_710_506_096_789_123_000),
        (b"20240315-12:34:56.789123456", 1_710_506_096_789_123_456),
        (b"20161231-23:59:60.000", 1_483_228_800_000_000_000),  # leap second
        (b"20240229-00:00:00.000", 1_709_164_800_000_000_000),
    ],
)
def test_timestamp_parsing(text: bytes | str, ns: int) -> None:
    assert parse_utc_timestamp(text) == ns


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"2024031512:34:56.789",
        b"20240315-12:34:56.78",
        b"20240315-12:34:56.",
        b"20240315-24:00:00.000",
        b"20240315-12:60:00.000",
        b"20240315-12:00:61.000",
        b"20230229-00:00:00.000",
        b"20241301-00:00:00.000",
        b"20240100-00:00:00.000",
        b"19691231-23:59:59.000",
        b"2024031a-00:00:00.000",
        b"20240315-12:34:56.7x9",
        b"20240315-12:34:56.789Z",
        b"+0240315-12:34:56.789",
    ],
)
def test_timestamp_parsing_refuses_malformed_text(text: bytes) -> None:
    with pytest.raises(TimestampError):
        parse_utc_timestamp(text)


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))
def test_timestamp_round_trip(ns: int) -> None:
    assert parse_utc_timestamp(format_utc_timestamp_us(ns)) == ns // 1000 * 1000
    assert parse_utc_timestamp(format_utc_timestamp(ns)) == ns // 1_000_000 * 1_000_000


# -- checksum arithmetic -------------------------------------------------------------------------


@given(st.binary(max_size=3000), st.booleans())
def test_byte_sum_is_the_sum_of_the_bytes_modulo_256(data: bytes, ascii_only: bool) -> None:
    if ascii_only:
        data = bytes(b & 0x7F for b in data)
    assert _byte_sum(data) == sum(data) % 256
    assert _byte_sum(data, len(data) // 2) == sum(data[: len(data) // 2]) % 256


def test_long_non_ascii_message_round_trips() -> None:
    raw = encode([*header(b"B", 1), (148, "headline"), (58, bytes(range(128, 256)) * 5)])
    assert sum(raw[: raw.rindex(b"10=")]) % 256 == int(raw[-4:-1])
    assert decode(raw).get(58) == bytes(range(128, 256)) * 5


def test_other_begin_strings_are_framed_when_asked_for() -> None:
    fix41 = encode([*header(b"1", 2), (112, b"id")], begin_string=b"FIX.4.1")
    for stream in (fix41 + new_order(3), new_order(1) + fix41 + new_order(3)):
        parser = FixParser(any_begin_string=True)
        out = [item for i in range(len(stream)) for item in parser.feed(stream[i : i + 1])]
        assert not garbled_only(out)
        assert messages_only(out)[-2:] == [fix41, new_order(3)]
    assert garbled_only(FixParser().feed(fix41))
