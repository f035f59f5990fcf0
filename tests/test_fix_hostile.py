"""The FIX session layer against hostile input: what a counterparty can send must never raise
in the venue, must be answered by the rules (Reject, ExecutionReport 39=8, Logout) or end the
connection cleanly, and must cost the sender rather than the other sessions.

Part of these run twice under ``scripts/test``: compiled and with ``VENUE_PURE=1``, since some
faults showed only in the compiled build. ``VENUE_FUZZ_ROUNDS=N`` sets the fuzz test's rounds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from fix_client import FixClient, now
from test_fix_orders import SESSIONS, logged_on, order

from engine.commands import Deposit
from engine.types import RejectReason
from engine.units import Malformed, NotMultiple, UnitScale
from gateway.edge.refusals import Refusal
from gateway.edge.requests import _to
from gateway.fix.acceptor import FixAcceptor
from gateway.fix.codec import FixMessage, FixParser, Value, decode, encode, frame
from gateway.fix.dictionary import load_dictionary
from gateway.fix.echo import EchoApplication
from gateway.fix.errors import Garbled, TimestampError
from gateway.fix.session import Session, SessionConfig
from gateway.fix.store import MemoryStore
from gateway.fix.timestamps import is_utc_timestamp, parse_utc_timestamp
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config
from venue.fix import FixGateway, attach_gateway, build_gateway
from venue.runtime import Venue

SPECS = Path(__file__).resolve().parent.parent / "fix_specs"
FULL = load_dictionary(SPECS / "FIX44.xml")
HUGE = b"1" * 5000
COIN = 10**8


def run(body: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(bounded())


# -- a venue with order entry, and an acceptor with the echo application ---------------------


def venue_config(data_dir: Path) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.fix is not None
    fix = dataclasses.replace(config.fix, port=0, sessions=SESSIONS)
    return dataclasses.replace(config, data_dir=data_dir, fix=fix, ledger=None)


@asynccontextmanager
async def venue_running(data_dir: Path) -> AsyncIterator[tuple[Venue, FixGateway, int]]:
    config = venue_config(data_dir)
    venue = Venue(config)
    await venue.start()
    assert config.fix is not None
    gateway = build_gateway(config.fix, venue)
    unsubscribe = attach_gateway(gateway, venue)
    _, port = await gateway.acceptor.start()
    try:
        for account in (1001, 1002):
            await venue.submit(Deposit(account, "USDT", 1_000_000 * COIN, f"usdt-{account}"))
            await venue.submit(Deposit(account, "BTC", 100 * COIN, f"btc-{account}"))
        yield venue, gateway, port
    finally:
        await gateway.acceptor.stop()
        unsubscribe()
        await venue.stop()


def echo_session(target: str, **kw: object) -> Session:
    config = SessionConfig(sender_comp_id="VENUE", target_comp_id=target, **kw)  # type: ignore[arg-type]
    return Session(config, FULL, MemoryStore(), EchoApplication())


@asynccontextmanager
async def echo_running(*targets: str, **kw: object) -> AsyncIterator[tuple[FixAcceptor, int]]:
    acceptor = FixAcceptor([echo_session(t) for t in targets], **kw)  # type: ignore[arg-type]
    _, port = await acceptor.start()
    try:
        yield acceptor, port
    finally:
        await acceptor.stop()


async def round_trip(client: FixClient, test_id: str) -> float:
    """Seconds from a TestRequest to its Heartbeat."""
    started = time.perf_counter()
    client.send(b"1", [(112, test_id)])
    await client.expect_type(b"0", timeout=10, _112=test_id.encode())
    return time.perf_counter() - started


async def alive(client: FixClient) -> None:
    await round_trip(client, f"alive-{client.seq}")


def write(client: FixClient, raw: bytes) -> None:
    writer = client._writer
    assert writer is not None
    writer.write(raw)


# -- 1. negative quantities and prices, compiled and interpreted ------------------------------


def test_a_malformed_decimal_is_refused_as_malformed_in_either_build() -> None:
    scale = UnitScale(Decimal("0.01"))
    for raw in (b"-1", b"-0", b"-95000.00", b"1e5", b"1.2.3"):
        with pytest.raises(Malformed):
            scale.to_units(raw)
        # compiled, a clause's ``as`` name shared with the NotMultiple one raised TypeError here
        with pytest.raises(Refusal) as refusal:
            _to(scale, raw, "quantity", RejectReason.QTY_NOT_LOT_MULTIPLE)
        assert refusal.value.reason == RejectReason.INVALID_QUANTITY
        assert refusal.value.kind == Refusal.MALFORMED
    with pytest.raises(Refusal) as off:
        _to(scale, b"1.001", "quantity", RejectReason.QTY_NOT_LOT_MULTIPLE)
    assert off.value.reason == RejectReason.QTY_NOT_LOT_MULTIPLE


def test_negative_quantity_or_price_gets_a_rejected_report_and_the_session_lives(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with venue_running(tmp_path) as (venue, _, port):
            (a,) = await logged_on(port, "A")
            for i, (qty, price, reason) in enumerate(
                [
                    (b"-1", b"95000.00", b"13"),  # incorrect quantity
                    (b"-0", b"95000.00", b"13"),
                    (b"0.5", b"-95000.00", b"11"),  # unsupported order characteristic: price
                ]
            ):
                a.send(b"D", order(f"neg{i}", b"1", qty, price))
                report = await a.expect_type(b"8", _11=f"neg{i}".encode())
                assert (report.get(150), report.get(39), report.get(103)) == (b"8", b"8", reason)
            await alive(a)
            assert venue.core.open_orders(1001) == []
            assert not a.invalid

    run(body)


# -- 2. numbers of thousands of digits -------------------------------------------------------


def test_units_bound_the_digits_before_converting() -> None:
    scale = UnitScale(Decimal("0.00001"))
    with pytest.raises(NotMultiple, match="out of range"):
        scale.to_units(HUGE)
    with pytest.raises(NotMultiple, match="out of range"):
        scale.to_units(HUGE + b".5")
    assert scale.to_units(b"0" * 5000 + b"1.5") == 150_000
    assert scale.to_units(b"1." + b"0" * 5000) == 100_000


@pytest.mark.parametrize(
    ("msg_type", "fields", "tag"),
    [
        (
            b"V",
            [(262, b"r"), (263, b"0"), (264, HUGE), (267, 1), (269, 0), (146, 1), (55, b"X")],
            264,
        ),
        (
            b"V",
            [(262, b"r"), (263, b"0"), (264, 0), (267, 1), (269, 0), (146, HUGE), (55, b"X")],
            146,
        ),
        (b"0", [(112, b"x")], 34),
        (b"2", [(7, HUGE), (16, 0)], 7),
        (b"4", [(36, b"18446744073709551616")], 36),
    ],
)
def test_an_integer_of_too_many_digits_is_out_of_range(
    msg_type: bytes, fields: list[tuple[int, Value]], tag: int
) -> None:
    seq: Value = HUGE if tag == 34 else 2
    raw = encode([(35, msg_type), (49, b"C"), (56, b"V"), (34, seq), (52, now()), *fields])
    rejection = load_dictionary(SPECS / "FIX44-venue.xml").validate(decode(raw))
    assert rejection is not None
    assert (rejection.reason, rejection.tag) == (5, tag)
    assert rejection.text == f"Value is incorrect (out of range) for this tag, field={tag}"
    assert FULL.validate(decode(raw)) == rejection


def test_huge_numbers_in_orders_are_answered_and_change_nothing(tmp_path: Path) -> None:
    async def body() -> None:
        async with venue_running(tmp_path) as (venue, _, port):
            a, md = await logged_on(port, "A", "MD")
            a.send(b"D", order("h1", b"1", HUGE, b"95000.00"))
            qty = await a.expect_type(b"8", _11=b"h1")
            assert (qty.get(39), qty.get(103)) == (b"8", b"13")
            a.send(b"D", order("h2", b"1", b"0.5", b"9" * 5000))
            price = await a.expect_type(b"8", _11=b"h2")
            assert (price.get(39), price.get(103)) == (b"8", b"18")
            a.send(b"D", [*order("h3", b"1", b"0.5", b"95000.00"), (1, HUGE)])
            account = await a.expect_type(b"j")
            assert account.get(380) == b"6"
            a.send(b"H", [(37, HUGE), (11, b"h4"), (55, b"BTC-USDT"), (54, b"1")])
            status = await a.expect_type(b"8", _11=b"h4")
            assert (status.get(150), status.get(39)) == (b"I", b"8")
            a.send(
                b"F",
                [(37, HUGE), (41, b"h0"), (11, b"h5"), (55, b"BTC-USDT"), (54, b"1"), (60, now())],
            )
            cancel = await a.expect_type(b"9", _11=b"h5")
            assert cancel.get(434) == b"1"
            md.send(
                b"V",
                [
                    (262, b"m1"),
                    (263, b"0"),
                    (264, HUGE),
                    (267, 1),
                    (269, b"0"),
                    (146, 1),
                    (55, b"BTC-USDT"),
                ],
            )
            depth = await md.expect_type(b"3")
            assert (depth.get(371), depth.get(373)) == (b"264", b"5")
            # a MsgSeqNum out of range in a message that fails validation
            write(
                a, frame(b"35=1\x0149=A\x0156=VENUE\x0134=%b\x0152=%b\x01112=x\x01" % (HUGE, now()))
            )
            seq = await a.expect_type(b"3")
            assert (seq.get(371), seq.get(373), seq.get(45)) == (b"34", b"5", b"0")
            await alive(a)
            await alive(md)
            assert venue.core.open_orders(1001) == []
            assert not a.invalid and not md.invalid

    run(body)


# -- 3. SequenceReset out of range -----------------------------------------------------------


def test_a_sequence_reset_out_of_range_is_rejected_and_changes_nothing() -> None:
    async def body() -> None:
        async with echo_running("S1") as (acceptor, port):
            session = next(iter(acceptor.sessions.values()))
            client = FixClient(port, "S1")
            await client.logon()
            for value in (b"18446744073709551616", b"9223372036854775808", HUGE):
                expected = session.next_target_seq
                client.send(b"4", [(36, value)])
                client.seq -= 1  # a refused SequenceReset does not consume its number
                reject = await client.expect_type(b"3")
                assert (reject.get(371), reject.get(373)) == (b"36", b"5")
                assert session.next_target_seq == expected
            await alive(client)
            client.send(b"5", [])
            await client.expect_type(b"5")
            await client.wait_closed()
            for _ in range(50):
                if not session.connected:
                    break
                await asyncio.sleep(0.02)
            assert await client.logon(reset=False) is not None
            await alive(client)

    run(body)


# -- 4. a flood of garbage -------------------------------------------------------------------


def test_parser_skips_repeated_frame_starts_in_one_item_quickly() -> None:
    flood = b"8=FIX" * 200_000
    parser = FixParser(any_begin_string=True)
    started = time.perf_counter()
    items = parser.feed(flood)
    elapsed = time.perf_counter() - started
    assert all(isinstance(item, Garbled) for item in items)
    assert len(items) <= 2
    assert elapsed < 0.2, elapsed
    good = encode([(35, b"0"), (49, b"C"), (56, b"V"), (34, 1), (52, now())])
    out = parser.feed(good)
    assert [item for item in out if isinstance(item, FixMessage)] == [decode(good)]
    skipped = sum(len(i.raw) for i in items + out if isinstance(i, Garbled))
    assert skipped + len(good) == len(flood) + len(good)


def test_a_garbage_flood_costs_the_sender_not_the_other_sessions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)

    async def body() -> None:
        async with echo_running("FLOOD", "CALM") as (acceptor, port):
            sessions = {s.config.target_comp_id: s for s in acceptor.sessions.values()}
            flood, calm = FixClient(port, "FLOOD"), FixClient(port, "CALM")
            await flood.logon()
            await calm.logon()
            baseline = await round_trip(calm, "before")
            worst = 0.0

            async def pour() -> None:
                chunk = b"8=FIX" * 20_000  # 100 kB
                try:
                    for _ in range(20):  # 2 MB
                        write(flood, chunk)
                        await asyncio.sleep(0)
                except ConnectionError:
                    pass

            pouring = asyncio.create_task(pour())
            for i in range(20):
                worst = max(worst, await round_trip(calm, f"during-{i}"))
                await asyncio.sleep(0.01)
            await pouring
            # Logged out and disconnected (the flooding client may see only the reset: the
            # venue closes with its garbage unread)
            flooding = sessions["FLOOD"]
            for _ in range(500):
                if not flooding.connected:
                    break
                await asyncio.sleep(0.01)
            assert not flooding.connected
            assert flooding.next_sender_seq == 3  # Logon and Logout
            assert worst < 0.25, (baseline, worst)
            await alive(calm)

    run(body)
    lines = [r for r in caplog.records if r.name == "gateway.fix.acceptor"]
    assert any("Too many garbled messages" in r.getMessage() for r in lines)
    assert len(lines) < 30, len(lines)
    assert sum(len(r.getMessage()) for r in lines) < 10_000


def test_garbled_messages_end_the_session_only_beyond_the_limit() -> None:
    async def body() -> None:
        async with echo_running("G1", max_garbled_per_minute=5) as (_, port):
            client = FixClient(port, "G1")
            await client.logon()
            bad = bytearray(
                encode([(35, b"0"), (49, b"G1"), (56, b"VENUE"), (34, 99), (52, now())])
            )
            bad[-4:-1] = b"000" if bad[-4:-1] != b"000" else b"001"
            for _ in range(4):
                write(client, bytes(bad))
            await alive(client)
            write(client, bytes(bad))
            logout = await client.expect_type(b"5")
            assert logout.get(58) == b"Too many garbled messages: 5 within a minute"
            await client.wait_closed()

    run(body)


# -- 5. stricter than QuickFIX ---------------------------------------------------------------


def _md_request(entry: bytes) -> FixMessage:
    body = (
        b"35=V\x0149=C\x0156=V\x0134=2\x0152=%b\x01262=r\x01263=0\x01264=0\x01267=1\x01269=0\x01146=1\x01%b"
        % (
            now(),
            entry,
        )
    )
    return decode(frame(body))


def test_repeating_group_members_must_follow_the_dictionary_order() -> None:
    assert FULL.validate(_md_request(b"55=X\x0165=A\x0148=1\x01")) is None
    out_of_order = FULL.validate(_md_request(b"55=X\x0148=1\x0165=A\x01"))
    assert out_of_order is not None
    assert (out_of_order.reason, out_of_order.tag, out_of_order.text) == (
        15,
        65,
        "Out of order repeating group members",
    )
    no_delimiter = FULL.validate(_md_request(b"65=A\x0155=X\x01"))
    assert no_delimiter is not None
    assert (no_delimiter.reason, no_delimiter.text) == (
        15,
        "The group 146 must set the delimiter field 55",
    )


def test_reject_texts_name_the_field() -> None:
    async def body() -> None:
        async with echo_running("T1") as (_, port):
            client = FixClient(port, "T1")
            await client.logon()
            client.send(
                b"D",
                [
                    (11, b"x"),
                    (21, b"1"),
                    (55, b"X"),
                    (54, b"1"),
                    (60, now()),
                    (38, b"abc"),
                    (40, b"1"),
                ],
            )
            reject = await client.expect_type(b"3")
            assert reject.get(58) == b"Incorrect data format for value, field=38"
            assert (reject.get(371), reject.get(373)) == (b"38", b"6")

    run(body)


def test_a_message_without_msg_seq_num_ends_the_session_with_a_logout() -> None:
    async def body() -> None:
        async with echo_running("M1") as (_, port):
            client = FixClient(port, "M1")
            await client.logon()
            write(client, frame(b"35=0\x0149=M1\x0156=VENUE\x0152=%b\x01" % now()))
            logout = await client.expect_type(b"5")
            assert logout.get(58) == b"Received message without MsgSeqNum"
            assert not [m for m in client.received if m.msg_type == b"3"]
            await client.wait_closed()

    run(body)


def test_logon_with_bad_sending_time_or_negative_heartbeat_gets_a_logout() -> None:
    async def body() -> None:
        async with echo_running("L1") as (acceptor, port):
            session = next(iter(acceptor.sessions.values()))
            client = FixClient(port, "L1")
            await client.connect()
            client.send_raw(b"A", [(98, 0), (108, 30)], b"20010101-00:00:00")
            logout = await client.expect_type(b"5")
            assert (
                logout.get(58) == b"Invalid Logon message: SendingTime accuracy problem, field=52"
            )
            await client.wait_closed()
            for _ in range(50):
                if not session.connected:
                    break
                await asyncio.sleep(0.02)
            client.seq = 0
            await client.connect()
            client.send(b"A", [(98, 0), (108, -5)])
            logout = await client.expect_type(b"5")
            assert logout.get(58) == b"HeartBtInt (108) must not be negative"
            await client.wait_closed()

    run(body)


# -- 6. UTCTimestamp: the dictionary and the parser agree ------------------------------------

BAD_TIMESTAMPS = [
    b"20300101-00:00:00.5",  # a fraction of one digit
    b"20300101-00:00:00.12",
    b"20300101-00:00:00.1234",
    b"20300230-00:00:00",  # 30 February
    b"20290229-00:00:00",  # not a leap year
    b"19690101-00:00:00",  # before 1970
    b"00000101-00:00:00",
    b"20300431-00:00:00",
]
GOOD_TIMESTAMPS = [
    b"20300101-00:00:00",
    b"20280229-12:00:00.123",
    b"20301231-23:59:60.123456",
    b"19700101-00:00:00.123456789",
]


def test_the_dictionary_and_the_parser_agree_on_utc_timestamps() -> None:
    def check(value: bytes) -> bool:
        raw = encode([(35, b"0"), (49, b"C"), (56, b"V"), (34, 2), (52, value)])
        return FULL.validate(decode(raw)) is None

    for value in BAD_TIMESTAMPS:
        assert not is_utc_timestamp(value) and not check(value), value
    for value in GOOD_TIMESTAMPS:
        assert is_utc_timestamp(value) and check(value), value
    rng = random.Random(7)
    for _ in range(2000):
        value = b"%04d%02d%02d-%02d:%02d:%02d%b" % (
            rng.choice([1969, 1970, 2000, 2024, 2100, 9999]),
            rng.randint(0, 13),
            rng.randint(0, 32),
            rng.randint(0, 24),
            rng.randint(0, 60),
            rng.randint(0, 61),
            rng.choice([b"", b".1", b".12", b".123", b".1234", b".123456", b".123456789"]),
        )
        try:
            parse_utc_timestamp(value)
            parsed = True
        except TimestampError:
            parsed = False
        assert check(value) == parsed, value


def test_a_malformed_expire_time_is_a_session_reject(tmp_path: Path) -> None:
    async def body() -> None:
        async with venue_running(tmp_path) as (_, _, port):
            (a,) = await logged_on(port, "A")
            for i, value in enumerate(BAD_TIMESTAMPS[:6]):
                a.send(
                    b"D", order(f"e{i}", b"1", b"0.1", b"95000.00", b"2", (59, b"6"), (126, value))
                )
                reject = await a.expect_type(b"3")
                assert (reject.get(371), reject.get(373)) == (b"126", b"6"), value
            assert not a.invalid

    run(body)


# -- fuzz: mutated valid traffic against the venue ------------------------------------------

FUZZ_ROUNDS = int(os.environ.get("VENUE_FUZZ_ROUNDS", "150"))
FUZZ_VALUES = [
    b"",
    HUGE,
    b"-1",
    b"-0",
    b"0",
    b"18446744073709551616",
    b"9223372036854775807",
    b"1e5",
    b"x" * 10_000,
    b"\x00\xff=",
    b"20300230-00:00:00",
    b"20300101-00:00:00.5",
    b"Y",
    b"-95000.00",
]


def _valid_traffic(rng: random.Random) -> list[tuple[bytes, list[tuple[int, bytes]]]]:
    sym = b"BTC-USDT"
    stamp = now()
    cl = b"f%d" % rng.randrange(10**6)
    return [
        (
            b"D",
            [
                (11, cl),
                (55, sym),
                (54, b"1"),
                (60, stamp),
                (40, b"2"),
                (38, b"0.1"),
                (44, b"95000.00"),
                (59, b"1"),
            ],
        ),
        (
            b"D",
            [
                (11, cl),
                (55, sym),
                (54, b"2"),
                (60, stamp),
                (40, b"2"),
                (38, b"0.1"),
                (44, b"96000.00"),
                (59, b"6"),
                (126, b"20991231-00:00:00"),
            ],
        ),
        (b"F", [(41, cl), (11, cl + b"c"), (55, sym), (54, b"1"), (60, stamp), (37, b"12")]),
        (
            b"G",
            [
                (41, cl),
                (11, cl + b"r"),
                (55, sym),
                (54, b"1"),
                (60, stamp),
                (40, b"2"),
                (38, b"0.2"),
                (44, b"95000.00"),
            ],
        ),
        (b"H", [(37, b"1"), (11, cl), (55, sym), (54, b"1")]),
        (b"q", [(11, cl), (530, b"7"), (60, stamp)]),
        (b"AF", [(584, cl), (585, b"7")]),
        (
            b"V",
            [(262, cl), (263, b"0"), (264, b"5"), (267, b"1"), (269, b"0"), (146, b"1"), (55, sym)],
        ),
        (b"0", []),
        (b"1", [(112, b"fuzz")]),
        (b"2", [(7, b"1"), (16, b"0")]),
        (b"4", [(123, b"Y"), (36, b"50")]),
        (b"4", [(36, b"18446744073709551616")]),
        (b"3", [(45, b"1"), (373, b"1")]),
        (b"A", [(98, b"0"), (108, b"30")]),
    ]


def _mutate(rng: random.Random, fields: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    fields = list(fields)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        i = rng.randrange(len(fields))
        if kind == 0:
            fields[i] = (fields[i][0], rng.choice(FUZZ_VALUES))
        elif kind == 1 and len(fields) > 1:
            del fields[i]
        elif kind == 2:
            fields.insert(i, fields[rng.randrange(len(fields))])
        elif kind == 3 and i + 1 < len(fields):
            fields[i], fields[i + 1] = fields[i + 1], fields[i]
        elif kind == 4:
            fields.insert(i, (rng.choice([0, -5, 9999, 5000, 146, 34, 8, 10]), b"1"))
        else:
            fields[i] = (fields[i][0], fields[i][1] + bytes([rng.randrange(32, 127)]))
    return fields


def _raw(fields: list[tuple[int, bytes]]) -> bytes:
    return frame(b"".join(b"%d=%b\x01" % (tag, value) for tag, value in fields))


def _echo_traffic(rng: random.Random) -> list[tuple[bytes, list[tuple[int, bytes]]]]:
    """Valid traffic for the echo application on FIX44.xml, with repeating groups."""
    stamp = now()
    cl = b"e%d" % rng.randrange(10**6)
    parties = [(453, b"2"), (448, b"P1"), (447, b"D"), (452, b"1"), (448, b"P2"), (447, b"D")]
    return [
        (
            b"D",
            [
                (11, cl),
                (21, b"1"),
                (55, b"X"),
                (54, b"1"),
                (60, stamp),
                (38, b"5"),
                (40, b"2"),
                (44, b"1.5"),
                *parties,
            ],
        ),
        (
            b"V",
            [
                (262, cl),
                (263, b"0"),
                (264, b"0"),
                (267, b"1"),
                (269, b"0"),
                (146, b"2"),
                (55, b"X"),
                (65, b"A"),
                (48, b"1"),
                (22, b"8"),
                (55, b"Y"),
            ],
        ),
        (b"1", [(112, b"fuzz")]),
        (b"4", [(123, b"Y"), (36, b"50")]),
        (b"2", [(7, b"1"), (16, b"0")]),
    ]


async def _fuzz(
    port: int,
    sessions: dict[str, Session],
    names: tuple[str, str],
    traffic: Callable[[random.Random], list[tuple[bytes, list[tuple[int, bytes]]]]],
    rng: random.Random,
) -> None:
    """Send ``FUZZ_ROUNDS`` mutated messages as ``names[0]``, each followed by a TestRequest:
    the venue must answer it (or ask for a resend, or log out, or close); ``names[1]`` must stay
    responsive throughout."""
    name, calm_name = names
    fuzz, calm = FixClient(port, name), FixClient(port, calm_name)
    await fuzz.logon()
    await calm.logon()
    answered = closed = 0
    for round_no in range(FUZZ_ROUNDS):
        msg_type, body_fields = rng.choice(traffic(rng))
        fuzz.seq += 1
        header = [
            (35, msg_type),
            (49, fuzz.sender),
            (56, fuzz.target),
            (34, b"%d" % fuzz.seq),
            (52, now()),
        ]
        raw = _raw(_mutate(rng, header + body_fields))
        if rng.random() < 0.1:  # damage the frame itself
            spot = rng.randrange(len(raw))
            raw = raw[:spot] + bytes([rng.randrange(256)]) + raw[spot + 1 :]
        write(fuzz, raw)
        probe = f"p{round_no}"
        fuzz.send(b"1", [(112, probe)])

        def settled(m: FixMessage, probe: str = probe) -> bool:
            return (m.msg_type == b"0" and m.get(112) == probe.encode()) or (
                m.msg_type in (b"2", b"5")
            )

        reply: FixMessage | None = None
        for attempt in range(2):
            try:
                reply = await fuzz.expect(settled, timeout=1 + 4 * attempt)
                break
            except AssertionError:
                # a frame whose CheckSum was damaged swallows the probe after it (as QuickFIX
                # frames): a second probe must get an answer
                assert fuzz.closed or not attempt, f"round {round_no}: {raw!r}"
                if fuzz.closed:
                    break
                fuzz.send(b"1", [(112, probe)])
        if reply is not None and reply.msg_type == b"0":
            answered += 1
        else:  # out of step or logged out: start over
            closed += 1
            await fuzz.close()
            for _ in range(100):
                if not sessions[name].connected:
                    break
                await asyncio.sleep(0.01)
            assert not sessions[name].connected
            fuzz = FixClient(port, name)
            await fuzz.logon()
        if round_no % 10 == 0:
            assert await round_trip(calm, f"calm{round_no}") < 0.5
    assert answered and closed


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    broken = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not broken, [r.getMessage() for r in broken[:5]]


def test_fuzz_mutated_traffic_never_breaks_the_venue(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(20261207)

    async def body() -> None:
        async with venue_running(tmp_path) as (_, gateway, port):
            sessions = {s.config.target_comp_id: s for s in gateway.acceptor.sessions.values()}
            await _fuzz(port, sessions, ("A", "B"), _valid_traffic, rng)

    run(body, timeout=240)
    _no_traceback(caplog)


def test_fuzz_mutated_groups_never_break_the_session_layer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    rng = random.Random(44)

    async def body() -> None:
        async with echo_running("FZ", "CALM") as (acceptor, port):
            sessions = {s.config.target_comp_id: s for s in acceptor.sessions.values()}
            await _fuzz(port, sessions, ("FZ", "CALM"), _echo_traffic, rng)

    run(body, timeout=240)
    _no_traceback(caplog)


# -- the native build under CI ----------------------------------------------------------------


@pytest.mark.parametrize(("ci", "status"), [("1", 1), ("", 0)])
def test_a_failed_native_build_fails_only_under_ci(tmp_path: Path, ci: str, status: int) -> None:
    """scripts/lib.sh's ensure_native, with a Python whose native build fails: under CI the
    compiled build is what is being tested, so the failure must not fall back silently."""
    root = Path(__file__).resolve().parent.parent
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        f'#!/bin/sh\\nif [ "$1" = scripts/build_native.py ]; then exit 1; fi\\n'
        f'exec {sys.executable} "$@"\\n'
    )
    fake.chmod(0o755)
    env = {**os.environ, "CI": ci}
    result = subprocess.run(
        ["bash", "-c", f"source {root / 'scripts' / 'lib.sh'} && ensure_native"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == status, result.stderr
