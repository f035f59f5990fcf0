"""FIX order entry and drop copy end to end: a real venue (journal with fsync, clearing with
fees) behind the real acceptor, driven over TCP by the test client; every message the venue
sends is also validated against the venue's dictionary."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fix_client import FixClient, now

from engine.commands import Deposit
from gateway.fix.codec import FixMessage, Value
from venue.config import DEFAULT_CONFIG_PATH, FixSessionConfig, VenueConfig, load_config
from venue.fix import attach_gateway, build_gateway, hash_password
from venue.runtime import Venue

SYM = b"BTC-USDT"
COIN = 10**8
PRIVATE_KEY = Ed25519PrivateKey.generate()
PUBLIC_KEY = base64.b64encode(
    PRIVATE_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
).decode()


def session(target: str, **kw: Any) -> FixSessionConfig:
    values: dict[str, Any] = {
        "target_comp_id": target,
        "kind": "order_entry",
        "accounts": (),
        "password_hash": "",
        "ed25519_public_key": "",
        "api_key": "",
        "cancel_on_disconnect": False,
        "max_md_subscriptions": 100,
        "reset_on_logon": False,
        "reset_on_logout": False,
        "reset_on_disconnect": False,
        "reset_time_utc": None,
        "throttle_per_s": 0,
        "throttle_logout_after_s": 10,
    }
    values.update(kw)
    return FixSessionConfig(**values)


SESSIONS = (
    session("A", accounts=(1001,)),
    session("B", accounts=(1002,)),
    session("MULTI", accounts=(1001, 1003)),
    session("COD", accounts=(1004,), cancel_on_disconnect=True),
    session("SLOW", accounts=(1005,), throttle_per_s=5),
    session("PW", accounts=(1006,), password_hash=hash_password("s3cret")),
    session("KEY", accounts=(1007,), ed25519_public_key=PUBLIC_KEY, api_key="key-1"),
    session("COPY", kind="drop_copy", accounts=(1001, 1002)),
    session("MD", kind="market_data", max_md_subscriptions=2),
)


def make_config(data_dir: Path) -> VenueConfig:
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.fix is not None
    fix = dataclasses.replace(config.fix, port=0, sessions=SESSIONS)
    return dataclasses.replace(config, data_dir=data_dir, fix=fix, ledger=None)


@asynccontextmanager
async def running(data_dir: Path) -> AsyncIterator[tuple[Venue, int]]:
    config = make_config(data_dir)
    venue = Venue(config)
    await venue.start()
    assert config.fix is not None
    gateway = build_gateway(config.fix, venue)
    unsubscribe = attach_gateway(gateway, venue)
    _, port = await gateway.acceptor.start()
    try:
        for account in (1001, 1002, 1003, 1004, 1005, 1006, 1007):
            await venue.submit(Deposit(account, "USDT", 1_000_000 * COIN, f"usdt-{account}"))
            await venue.submit(Deposit(account, "BTC", 100 * COIN, f"btc-{account}"))
        yield venue, port
    finally:
        await gateway.acceptor.stop()
        unsubscribe()
        await venue.stop()


def run(body: Callable[[], Awaitable[None]], timeout: float = 60) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(body(), timeout)

    asyncio.run(bounded())


def order(
    cl_ord_id: str,
    side: bytes,
    qty: bytes,
    price: bytes | None = None,
    ord_type: bytes = b"2",
    *extra: tuple[int, Value],
) -> list[tuple[int, Value]]:
    fields: list[tuple[int, Value]] = [
        (11, cl_ord_id),
        (55, SYM),
        (54, side),
        (60, now()),
        (40, ord_type),
        (38, qty),
    ]
    if price is not None:
        fields.append((44, price))
    fields.extend(extra)
    return fields


async def logged_on(port: int, *names: str) -> list[FixClient]:
    clients = [FixClient(port, name) for name in names]
    for client in clients:
        await client.logon()
    return clients


def assert_valid(*clients: FixClient) -> None:
    for client in clients:
        assert not client.invalid, f"invalid messages from the venue: {client.invalid}"


def test_two_sessions_trade_and_the_drop_copy_sees_both(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            a, b, copy = await logged_on(port, "A", "B", "COPY")
            a.send(b"D", order("buy-1", b"1", b"0.5", b"95000.00"))
            new = await a.expect_type(b"8", _150=b"0", _11=b"buy-1")
            assert new.get(39) == b"0" and new.get(151) == b"0.50000" and new.get(14) == b"0.00000"
            b.send(b"D", order("sell-1", b"2", b"0.2", b"94990.00"))
            taker = await b.expect_type(b"8", _150=b"F", _11=b"sell-1")
            maker = await a.expect_type(b"8", _150=b"F", _11=b"buy-1")
            for report, liquidity in ((maker, b"1"), (taker, b"2")):
                assert report.get(32) == b"0.20000"
                assert report.get(31) == b"95000.00"
                assert report.get(6) == b"95000.00"
                assert report.get(14) == b"0.20000"
                assert report.get(851) == liquidity
                assert report.get(13) == b"3"
            assert maker.get(39) == b"1" and maker.get(151) == b"0.30000"
            assert taker.get(39) == b"2" and taker.get(151) == b"0.00000"
            # fees: 0.1 % of what each receives; the buyer receives BTC, the seller USDT
            assert maker.get(479) == b"BTC" and maker.get(12) == b"0.00020000"
            assert taker.get(479) == b"USDT" and taker.get(12) == b"19.00000000"
            # the drop copy: every report of both accounts, same ExecIDs, CopyMsgIndicator
            copies = [await copy.expect_type(b"8") for _ in range(4)]
            assert all(c.get(797) == b"Y" for c in copies)
            ids = {c.get(17) for c in copies}
            assert {new.get(17), maker.get(17), taker.get(17)} <= ids
            assert maker.get(17) != taker.get(17)  # one trade, an execution per side
            assert (maker.get(17) or b"")[:-1] == (taker.get(17) or b"")[:-1]
            assert_valid(a, b, copy)

    run(body)


def test_decimals_off_the_tick_or_lot_are_rejected_with_a_reason(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (venue, port):
            (a,) = await logged_on(port, "A")
            a.send(b"D", order("t1", b"1", b"0.5", b"95000.001"))
            off_tick = await a.expect_type(b"8", _11=b"t1")
            assert (off_tick.get(150), off_tick.get(103), off_tick.get(25006)) == (
                b"8",
                b"18",
                b"7",
            )
            a.send(b"D", order("t2", b"1", b"0.000001", b"95000.00"))
            off_lot = await a.expect_type(b"8", _11=b"t2")
            assert (off_lot.get(150), off_lot.get(103), off_lot.get(25006)) == (b"8", b"13", b"6")
            a.send(b"D", order("t3", b"1", b"1e5", b"95000.00"))
            malformed = await a.expect_type(b"3")
            assert (malformed.get(371), malformed.get(373)) == (b"38", b"6")
            a.send(b"D", order("t4", b"1", b"0.5", b"200000.00"))
            band = await a.expect_type(b"8", _11=b"t4")
            assert (band.get(103), band.get(25006), band.get(58)) == (
                b"16",
                b"11",
                b"PRICE_OUTSIDE_BAND",
            )
            assert venue.core.open_orders(1001) == []
            assert_valid(a)

    run(body)


def test_accounts_must_be_entitled(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            a, multi, copy = await logged_on(port, "A", "MULTI", "COPY")
            a.send(b"D", [*order("x1", b"1", b"0.1", b"95000.00"), (1, b"1002")])
            reject = await a.expect_type(b"j")
            assert (reject.get(380), reject.get(372)) == (b"6", b"D")
            multi.send(b"D", order("x2", b"1", b"0.1", b"95000.00"))
            missing = await multi.expect_type(b"j")
            assert missing.get(380) == b"5"
            multi.send(b"D", [*order("x3", b"1", b"0.1", b"95000.00"), (1, b"1003")])
            ok = await multi.expect_type(b"8", _11=b"x3")
            assert (ok.get(150), ok.get(1)) == (b"0", b"1003")
            copy.send(b"D", [*order("x4", b"1", b"0.1", b"95000.00"), (1, b"1001")])
            refused = await copy.expect_type(b"j")
            assert refused.get(380) == b"6"
            assert_valid(a, multi, copy)

    run(body)


def test_order_types_and_time_in_force(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (venue, port):
            a, b = await logged_on(port, "A", "B")
            # resting liquidity: B sells 1 BTC at 95,100 and 95,200
            b.send(b"D", order("s1", b"2", b"1", b"95100.00"))
            b.send(b"D", order("s2", b"2", b"1", b"95200.00"))
            await b.expect_type(b"8", _11=b"s1", _150=b"0")
            await b.expect_type(b"8", _11=b"s2", _150=b"0")
            # post-only that would take
            a.send(b"D", order("p1", b"1", b"0.1", b"95100.00", b"2", (18, b"6")))
            would_take = await a.expect_type(b"8", _11=b"p1")
            assert (would_take.get(150), would_take.get(25006)) == (b"8", b"15")
            # post-only that rests, reported with its ExecInst
            a.send(b"D", order("p2", b"1", b"0.1", b"95000.00", b"2", (18, b"6")))
            rests = await a.expect_type(b"8", _11=b"p2")
            assert (rests.get(150), rests.get(18)) == (b"0", b"6")
            # IOC: fills 1 at 95,100, the remainder expires
            a.send(b"D", order("i1", b"1", b"1.5", b"95100.00", b"2", (59, b"3")))
            fill = await a.expect_type(b"8", _11=b"i1", _150=b"F")
            assert fill.get(32) == b"1.00000"
            expired = await a.expect_type(b"8", _11=b"i1", _150=b"C")
            assert (expired.get(39), expired.get(25005), expired.get(14)) == (
                b"C",
                b"6",
                b"1.00000",
            )
            # FOK that cannot fill
            a.send(b"D", order("f1", b"1", b"5", b"95200.00", b"2", (59, b"4")))
            fok = await a.expect_type(b"8", _11=b"f1", _150=b"C")
            assert fok.get(25005) == b"7"
            # iceberg
            a.send(b"D", order("ice", b"1", b"2", b"94000.00", b"2", (111, b"0.5")))
            ice = await a.expect_type(b"8", _11=b"ice", _150=b"0")
            assert ice.get(111) == b"0.50000"
            # stop-limit buy above the market, and a take-profit sell
            a.send(b"D", order("st", b"1", b"0.1", b"96000.00", b"4", (99, b"95900.00")))
            stop = await a.expect_type(b"8", _11=b"st", _150=b"0")
            assert (stop.get(40), stop.get(99)) == (b"4", b"95900.00")
            a.send(b"D", order("tp", b"2", b"0.1", None, b"3", (99, b"99000.00"), (25002, b"Y")))
            take_profit = await a.expect_type(b"8", _11=b"tp", _150=b"0")
            assert take_profit.get(25002) == b"Y"
            # market buy by quote amount
            a.send(
                b"D",
                [
                    (11, b"mq"),
                    (55, SYM),
                    (54, b"1"),
                    (60, now()),
                    (40, b"1"),
                    (152, b"9520.00"),
                ],
            )
            market = await a.expect_type(b"8", _11=b"mq", _150=b"F")
            assert market.get(31) == b"95200.00" and market.get(32) == b"0.10000"
            # GTD in the past, then DAY accepted
            a.send(
                b"D",
                order(
                    "g1", b"1", b"0.1", b"90000.00", b"2", (59, b"6"), (126, b"20200101-00:00:00")
                ),
            )
            gtd = await a.expect_type(b"8", _11=b"g1")
            assert gtd.get(25006) == b"20"
            a.send(b"D", order("d1", b"1", b"0.1", b"90000.00", b"2", (59, b"0")))
            day = await a.expect_type(b"8", _11=b"d1", _150=b"0")
            assert day.get(59) == b"0"
            # STP: the same owner's orders never trade; EXPIRE_TAKER by tag 25001
            a.send(b"D", order("own-sell", b"2", b"0.1", b"95050.00"))
            await a.expect_type(b"8", _11=b"own-sell", _150=b"0")
            a.send(b"D", order("own-buy", b"1", b"0.1", b"95050.00", b"2", (25001, b"2")))
            stp = await a.expect_type(b"8", _11=b"own-buy", _150=b"C")
            assert stp.get(25005) == b"5"
            clids = {o.client_order_id for o in venue.core.open_orders(1001)}
            assert {"p2", "ice", "st", "tp", "d1", "own-sell"} <= clids
            assert_valid(a, b)

    run(body, timeout=90)


def test_cancel_replace_status_and_mass_requests(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (venue, port):
            (a,) = await logged_on(port, "A")
            for i in range(3):
                a.send(b"D", order(f"o{i}", b"1", b"0.1", b"94000.00"))
                await a.expect_type(b"8", _11=f"o{i}".encode(), _150=b"0")
            # cancel by OrigClOrdID
            a.send(b"F", [(11, b"c0"), (41, b"o0"), (55, SYM), (54, b"1"), (60, now())])
            cancelled = await a.expect_type(b"8", _150=b"4")
            assert (cancelled.get(11), cancelled.get(41), cancelled.get(25005)) == (
                b"c0",
                b"o0",
                b"1",
            )
            # cancel of an unknown order
            a.send(b"F", [(11, b"c9"), (41, b"nope"), (55, SYM), (54, b"1"), (60, now())])
            cxl_reject = await a.expect_type(b"9")
            assert (cxl_reject.get(434), cxl_reject.get(102), cxl_reject.get(25006)) == (
                b"1",
                b"1",
                b"17",
            )
            # replace: new price and quantity
            a.send(
                b"G",
                [
                    (11, b"o1b"),
                    (41, b"o1"),
                    (55, SYM),
                    (54, b"1"),
                    (60, now()),
                    (40, b"2"),
                    (38, b"0.2"),
                    (44, b"94100.00"),
                ],
            )
            replaced = await a.expect_type(b"8", _150=b"5")
            assert (replaced.get(11), replaced.get(41), replaced.get(44), replaced.get(38)) == (
                b"o1b",
                b"o1",
                b"94100.00",
                b"0.20000",
            )
            # a replace may not change the side
            a.send(
                b"G",
                [
                    (11, b"o1c"),
                    (41, b"o1b"),
                    (55, SYM),
                    (54, b"2"),
                    (60, now()),
                    (40, b"2"),
                    (38, b"0.2"),
                    (44, b"94100.00"),
                ],
            )
            refused = await a.expect_type(b"9")
            assert (refused.get(434), refused.get(25006)) == (b"2", b"18")
            # status of a live order and of an unknown one
            a.send(b"H", [(11, b"o2"), (55, SYM), (54, b"1"), (790, b"st-1")])
            status = await a.expect_type(b"8", _150=b"I", _11=b"o2")
            assert (status.get(39), status.get(790)) == (b"0", b"st-1")
            a.send(b"H", [(11, b"ghost"), (55, SYM), (54, b"1")])
            unknown = await a.expect_type(b"8", _150=b"I", _11=b"ghost")
            assert (unknown.get(39), unknown.get(103)) == (b"8", b"5")
            # mass status: two open orders, the last flagged
            a.send(b"AF", [(584, b"ms-1"), (585, b"7")])
            first = await a.expect_type(b"8", _150=b"I", _584=b"ms-1")
            second = await a.expect_type(b"8", _150=b"I", _584=b"ms-1")
            assert first.get(911) == second.get(911) == b"2"
            assert first.get(912) is None and second.get(912) == b"Y"
            # mass cancel: one report listing both, and their reports
            a.send(b"q", [(11, b"mc-1"), (530, b"7"), (60, now())])
            report = await a.expect_type(b"r")
            assert (report.get(531), report.get(533), report.get(534)) == (b"7", b"2", b"2")
            assert set(report.get_all(41)) == {b"o1b", b"o2"}
            for _ in range(2):
                gone = await a.expect_type(b"8", _150=b"4")
                assert gone.get(25005) == b"2"
            assert venue.core.open_orders(1001) == []
            assert_valid(a)

    run(body, timeout=90)


def test_cancel_on_disconnect_and_the_reports_after_reconnecting(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (venue, port):
            (cod,) = await logged_on(port, "COD")
            cod.send(b"D", order("r1", b"1", b"0.1", b"94000.00"))
            await cod.expect_type(b"8", _11=b"r1", _150=b"0")
            await cod.close()
            for _ in range(50):
                if not venue.core.open_orders(1004):
                    break
                await asyncio.sleep(0.05)
            assert venue.core.open_orders(1004) == []
            # back without a reset: the cancel report arrives through the resend
            await cod.logon(reset=False)  # the client keeps its sequence numbers
            cod.send(b"2", [(7, 1), (16, 0)])
            resent = await cod.expect_type(b"8", _150=b"4", _11=b"r1")
            assert (resent.get(25005), resent.get(43)) == (b"13", b"Y")
            assert_valid(cod)

    run(body)


def test_throttle_rejects_what_is_beyond_the_limit(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            (slow,) = await logged_on(port, "SLOW")
            for i in range(8):
                slow.send(b"H", [(11, f"q{i}".encode()), (55, SYM), (54, b"1")])
            messages = await slow.drain(0.5)
            answers = [m for m in messages if m.msg_type in (b"8", b"j")]
            throttled = [m for m in answers if m.msg_type == b"j"]
            assert len(answers) == 8
            assert 1 <= len(throttled) <= 3
            assert all(m.get(380) == b"0" and b"Throttle" in (m.get(58) or b"") for m in throttled)

    run(body)


def test_logon_with_password_or_signature(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            good = FixClient(port, "PW")
            assert await good.logon(extra=[(554, b"s3cret")]) is not None
            bad = FixClient(port, "KEY")
            await bad.logon(extra=[(553, b"key-1")], sign_with=lambda p: b"x" * 64, expect=False)
            logout = await bad.expect_type(b"5")
            assert logout.get(58) == b"authentication failed"
            await bad.wait_closed()
            wrong = FixClient(port, "PW")
            await good.close()
            await wrong.logon(extra=[(554, b"guess")], expect=False)
            assert (await wrong.expect_type(b"5")).get(58) == b"authentication failed"
            await wrong.wait_closed()
            signed = FixClient(port, "KEY")
            logon = await signed.logon(extra=[(553, b"key-1")], sign_with=PRIVATE_KEY.sign)
            assert logon is not None and logon.get(108) == b"30"

    run(body)


def test_reports_sent_while_away_survive_a_venue_restart(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            a, b = await logged_on(port, "A", "B")
            a.send(b"D", order("keep", b"1", b"0.3", b"95000.00"))
            await a.expect_type(b"8", _11=b"keep", _150=b"0")
            await a.close()
            b.send(b"D", order("hit", b"2", b"0.1", b"95000.00"))
            await b.expect_type(b"8", _11=b"hit", _150=b"F")
            seq_before = a.seq
        async with running(tmp_path) as (_, port):
            a = FixClient(port, "A")
            a.seq = seq_before
            await a.logon(reset=False)
            a.send(b"2", [(7, 1), (16, 0)])
            fill = await a.expect_type(b"8", _11=b"keep", _150=b"F")
            assert fill.get(43) == b"Y" and fill.get(14) == b"0.10000"
            a.send(b"F", [(11, b"bye"), (41, b"keep"), (55, SYM), (54, b"1"), (60, now())])
            gone = await a.expect_type(b"8", _150=b"4", _41=b"keep")
            assert gone.get(14) == b"0.10000"
            assert_valid(a)

    run(body)


def first(messages: list[FixMessage], msg_type: bytes) -> FixMessage:
    return next(m for m in messages if m.msg_type == msg_type)


def test_market_data_and_security_list_over_the_wire(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            a, b, md = await logged_on(port, "A", "B", "MD")
            md.send(b"x", [(320, b"sl-1"), (559, b"4")])
            listing = await md.expect_type(b"y")
            assert listing.get(560) == b"0" and b"BTC-USDT" in listing.get_all(55)
            a.send(b"D", order("bid", b"1", b"0.5", b"94000.00"))
            await a.expect_type(b"8", _11=b"bid")
            md.send(
                b"V",
                [
                    (262, b"md-1"),
                    (263, b"1"),
                    (264, b"0"),
                    (265, b"1"),
                    (267, 3),
                    (269, b"0"),
                    (269, b"1"),
                    (269, b"2"),
                    (146, 1),
                    (55, SYM),
                ],
            )
            snapshot = await md.expect_type(b"W", _262=b"md-1")
            assert (snapshot.get(270), snapshot.get(271)) == (b"94000.00", b"0.50000")
            b.send(b"D", order("ask", b"2", b"0.2", b"94000.00"))
            update = await md.expect_type(b"X", _262=b"md-1")
            entries = update.fields
            assert (269, b"2") in entries and (271, b"0.20000") in entries  # the trade
            assert (279, b"1") in entries and (271, b"0.30000") in entries  # the level left
            seqs = [int(v) for t, v in entries if t == 83]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert seqs[0] == int(snapshot.get(83) or b"0") + 1  # no gap after the snapshot
            a.send(
                b"V",
                [
                    (262, b"no"),
                    (263, b"0"),
                    (264, b"1"),
                    (267, 1),
                    (269, b"0"),
                    (146, 1),
                    (55, SYM),
                ],
            )
            refused = await a.expect_type(b"j")
            assert refused.get(380) == b"6"
            assert_valid(a, b, md)

    run(body)


def test_heartbeat_interval_outside_the_bounds_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            client = FixClient(port, "A")
            await client.logon(heartbeat=2, expect=False)
            logout = await client.expect_type(b"5")
            assert logout.get(58) == b"HeartBtInt (108) must be between 5 and 60 seconds"
            await client.wait_closed()

    run(body)


def test_reports_lost_in_a_crash_are_sent_again_with_poss_resend(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (venue, port):
            (a,) = await logged_on(port, "A")
            before = venue.core.last_seq
            a.send(b"D", order("lost", b"1", b"0.2", b"94000.00"))
            original = await a.expect_type(b"8", _11=b"lost", _150=b"0")
            seq_before = a.seq
        # as if the venue had crashed after the journal's fsync and before the stores' flush
        marker = tmp_path / "fix" / "reported_seq"
        assert int(marker.read_text()) > before
        marker.write_text(f"{before}\n")
        async with running(tmp_path) as (venue, port):
            assert int(marker.read_text()) > before  # what was reported again is recorded
            a = FixClient(port, "A")
            a.seq = seq_before
            await a.logon(reset=False)
            a.send(b"2", [(7, 1), (16, 0)])
            again = await a.expect_type(b"8", _11=b"lost", _97=b"Y")
            assert again.get(17) == original.get(17)  # the same execution, flagged
            assert again.get(150) == b"0" and again.get(151) == b"0.20000"
            assert_valid(a)

    run(body)


def test_a_mass_cancel_for_an_unknown_symbol_is_rejected_in_its_report(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            (a,) = await logged_on(port, "A")
            a.send(b"q", [(11, b"mc-x"), (530, b"1"), (55, b"NOPE-USDT"), (60, now())])
            report = await a.expect_type(b"r")
            assert (report.get(531), report.get(532), report.get(25006)) == (b"0", b"1", b"1")
            assert_valid(a)  # 532 is validated against the venue's own dictionary

    run(body)


def test_avg_px_of_a_partly_filled_order_survives_a_restart(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as (_, port):
            a, b = await logged_on(port, "A", "B")
            b.send(b"D", order("cheap", b"2", b"0.1", b"94000.00"))
            await b.expect_type(b"8", _11=b"cheap", _150=b"0")
            a.send(b"D", order("sweep", b"1", b"0.3", b"95000.00"))
            took = await a.expect_type(b"8", _11=b"sweep", _150=b"F")
            assert took.get(6) == b"94000.00"  # it took liquidity below its limit, then rests
        async with running(tmp_path) as (_, port):
            a, b = await logged_on(port, "A", "B")
            b.send(b"D", order("more", b"2", b"0.1", b"95000.00"))
            fill = await a.expect_type(b"8", _11=b"sweep", _150=b"F")
            assert fill.get(14) == b"0.20000"
            assert fill.get(6) == b"94500.00"  # (94,000 x 0.1 + 95,000 x 0.1) / 0.2, exactly
            assert_valid(a, b)

    run(body)
