"""FIX market data and reference data (``gateway/fix/marketdata.py``) against a real core.

Each test runs the matching core with real commands, a real FIX session (memory store, the
venue's dictionary) logged on by a Logon, and the handler between them. Requests go through the
session layer, as a client's would; every message the venue writes is decoded and validated
against ``fix_specs/FIX44-venue.xml``. The client's side of market data is modelled by
:class:`ClientBook`: it applies the snapshot and the increments it receives the way a client
does, checking RptSeq, and is compared with the core's own book.
"""

from __future__ import annotations

import itertools
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import SYM, SYM2, Venue, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.commands import (
    CancelOrder,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    SetInstrumentState,
    Tick,
)
from engine.events import Event, OrderAccepted, Trade
from engine.instrument import InstrumentSpec
from engine.types import InstrumentState, MassCancelScope, OrdType, Side, StpMode, TimeInForce
from gateway.fix.codec import FixMessage, decode, encode
from gateway.fix.dictionary import load_dictionary
from gateway.fix.marketdata import MAX_ENTRIES_PER_INCREMENT, MarketDataHandler
from gateway.fix.session import Session, SessionConfig
from gateway.fix.store import MemoryStore
from gateway.fix.timestamps import format_utc_timestamp

ROOT = Path(__file__).resolve().parent.parent
DICT = load_dictionary(
    ROOT / "fix_specs" / "FIX44-venue.xml",
    known_msg_types=load_dictionary(ROOT / "fix_specs" / "FIX44.xml").enum_values(35),
)
VENUE_ID = "VENUE"
BUY, SELL = Side.BUY, Side.SELL
ALL_TYPES = (b"0", b"1", b"2")
TICK, LOT = spec().tick_size, spec().lot_size
BOOK_TYPES = (b"0", b"1")
#: (MDEntryType, MDEntryPx, MDEntrySize, NumberOfOrders) of a book level.
Level = tuple[bytes, bytes, bytes, bytes]
#: (MDUpdateAction, MDEntryType, RptSeq, MDEntryPx, MDEntrySize, NumberOfOrders) of an X entry.
XEntry = tuple[bytes, bytes, bytes, bytes, bytes | None, bytes | None]


# -- the venue side ----------------------------------------------------------------------------


class Feed:
    """A core with the handler fed after every command, as the venue does."""

    def __init__(self, *specs: InstrumentSpec, **handler_kw: Any) -> None:
        specs = specs or (spec(SYM), spec(SYM2))
        self.venue = Venue(*specs)
        self.handler = MarketDataHandler(
            self.venue.core, {s.symbol: s for s in specs}, **handler_kw
        )
        self._clid = itertools.count(1)

    def send(self, cmd: Any) -> list[Event]:
        events = self.venue.send(cmd)
        self.handler.on_events(self.venue.seq, self.venue.ts, events)
        return events

    def order(
        self,
        account: int,
        side: Side,
        price: int,
        qty: int,
        symbol: str = SYM,
        ord_type: OrdType = OrdType.LIMIT,
        **kw: Any,
    ) -> int:
        """The order id (0 when not accepted)."""
        events = self.send(
            NewOrder(account, symbol, f"c{next(self._clid)}", side, ord_type, qty, price, **kw)
        )
        accepted = [e.order_id for e in events if isinstance(e, OrderAccepted)]
        return accepted[0] if accepted else 0

    def buy(self, account: int, price: int, qty: int, **kw: Any) -> int:
        return self.order(account, BUY, price, qty, **kw)

    def sell(self, account: int, price: int, qty: int, **kw: Any) -> int:
        return self.order(account, SELL, price, qty, **kw)

    def cancel(self, account: int, order_id: int, symbol: str = SYM) -> None:
        self.send(CancelOrder(account, symbol, order_id))

    def book(
        self, symbol: str = SYM, depth: int = 0
    ) -> dict[bytes, list[tuple[bytes, bytes, bytes]]]:
        """The core's book as a client should see it: formatted, best first."""
        market = self.venue.core.markets[symbol]
        tick, lot = market.spec.tick_size, market.spec.lot_size
        return {
            b"0": [_level(tick, lot, *lv) for lv in market.bids.depth(depth)],
            b"1": [_level(tick, lot, *lv) for lv in market.asks.depth(depth)],
        }


def _level(
    tick: Decimal, lot: Decimal, price: int, qty: int, count: int
) -> tuple[bytes, bytes, bytes]:
    """(270, 271, 346) written with the instrument's precision, computed with Decimal here."""
    return (_fmt(price * tick, tick), _fmt(qty * lot, lot), b"%d" % count)


def _fmt(value: Decimal, step: Decimal) -> bytes:
    places = max(0, -step.normalize().as_tuple().exponent)  # type: ignore[operator]
    return f"{value:.{places}f}".encode()


# -- the client side ---------------------------------------------------------------------------


class App:
    """The dispatch the gateway's application does, reduced to market and reference data."""

    def __init__(self, handler: MarketDataHandler, max_subscriptions: int) -> None:
        self.handler = handler
        self.max_subscriptions = max_subscriptions

    def on_logon(self, session: Session, logon: FixMessage) -> str | None:
        return None

    def on_logout(self, session: Session) -> None:
        self.handler.session_closed(session)

    def from_app(self, session: Session, msg: FixMessage) -> None:
        if msg.msg_type == b"V":
            self.handler.market_data_request(session, msg, self.max_subscriptions)
        elif msg.msg_type == b"x":
            self.handler.security_list(session, msg)


class Client:
    """A logged-on market data session; ``take()`` answers what the venue wrote since."""

    def __init__(self, feed: Feed, name: str = "MD1", max_subscriptions: int = 100) -> None:
        self.feed = feed
        self.name = name
        self.wire: list[bytes] = []
        self.read = 0
        self.seq = 0
        self.session = Session(
            SessionConfig(VENUE_ID, name),
            DICT,
            MemoryStore(),
            App(feed.handler, max_subscriptions),
        )
        self.session.attach(write=self.wire.append, close=lambda: None)
        logon = self.send(b"A", [(98, 0), (108, 30)])
        assert [m.msg_type for m in logon] == [b"A"]
        assert self.session.logged_on

    def message(self, msg_type: bytes, body: list[tuple[int, Any]]) -> FixMessage:
        self.seq += 1
        now = format_utc_timestamp(time.time_ns())
        head: list[tuple[int, Any]] = [
            (35, msg_type),
            (49, self.name),
            (56, VENUE_ID),
            (34, self.seq),
            (52, now),
        ]
        return decode(encode(head + body))

    def send(self, msg_type: bytes, body: list[tuple[int, Any]]) -> list[FixMessage]:
        """Through the session layer: the request must be valid for the dictionary."""
        msg = self.message(msg_type, body)
        assert DICT.validate(msg) is None, DICT.validate(msg)
        self.session.on_message(msg)
        return self.take()

    def take(self) -> list[FixMessage]:
        out = []
        for raw in self.wire[self.read :]:
            msg = decode(raw)
            assert DICT.validate(msg) is None, (msg, DICT.validate(msg))
            out.append(msg)
        self.read = len(self.wire)
        return out

    def subscribe(
        self,
        req_id: str,
        symbols: tuple[str, ...] = (SYM,),
        *,
        kind: bytes = b"1",
        depth: int = 0,
        types: tuple[bytes, ...] = ALL_TYPES,
        update_type: bytes | None = None,
        aggregated: bytes | None = None,
    ) -> list[FixMessage]:
        return self.send(
            b"V", md_request(req_id, symbols, kind, depth, types, update_type, aggregated)
        )

    def close(self) -> None:
        self.session.detach()


def md_request(
    req_id: str,
    symbols: tuple[str, ...] = (SYM,),
    kind: bytes = b"1",
    depth: int = 0,
    types: tuple[bytes, ...] = ALL_TYPES,
    update_type: bytes | None = None,
    aggregated: bytes | None = None,
) -> list[tuple[int, Any]]:
    body: list[tuple[int, Any]] = [(262, req_id), (263, kind), (264, depth)]
    if update_type is not None:
        body.append((265, update_type))
    if aggregated is not None:
        body.append((266, aggregated))
    body.append((267, len(types)))
    body += [(269, t) for t in types]
    body.append((146, len(symbols)))
    body += [(55, s) for s in symbols]
    return body


def entries(msg: FixMessage) -> list[dict[int, bytes]]:
    """The NoMDEntries (or NoRelatedSym) entries of a W, X or y, each as tag -> value."""
    count_tag = 146 if msg.msg_type == b"y" else 268
    layout = DICT.group_layout(msg.msg_type, count_tag)
    assert layout is not None
    delimiter, members = layout
    out = []
    for entry in msg.group(count_tag, delimiter, members):
        tags = [tag for tag, _ in entry]
        assert len(tags) == len(set(tags)), entry
        out.append(dict(entry))
    return out


def levels(msg: FixMessage) -> list[Level]:
    """A W's entries as (269, 270, 271, 346)."""
    return [(e[269], e[270], e[271], e[346]) for e in entries(msg) if e[269] != b"2"]


def book_of(
    feed: Feed, symbol: str = SYM, depth: int = 0, types: tuple[bytes, ...] = BOOK_TYPES
) -> list[Level]:
    """The core's own book as the levels a client should hold."""
    book = feed.book(symbol, depth)
    return [(t, p, q, c) for t in (b"0", b"1") if t in types for p, q, c in book[t]]


class ClientBook:
    """A client's copy of one instrument's book: a snapshot, then increments applied in order,
    each entry's RptSeq checked against the previous one."""

    def __init__(self, snapshot: FixMessage, symbol: str = SYM) -> None:
        assert snapshot.msg_type == b"W"
        assert snapshot.get(55) == symbol.encode()
        self.symbol = symbol.encode()
        self.req_id = snapshot.get(262)
        self.rpt_seq = int(snapshot.get(83) or b"-1")
        self.sides: dict[bytes, dict[bytes, tuple[bytes, bytes]]] = {b"0": {}, b"1": {}}
        self.trades: list[tuple[bytes, bytes]] = []
        self.reset(snapshot)

    def reset(self, snapshot: FixMessage) -> None:
        self.rpt_seq = int(snapshot.get(83) or b"-1")
        self.sides = {b"0": {}, b"1": {}}
        for e in entries(snapshot):
            if e[269] == b"2":
                self.trades.append((e[270], e[271]))
            else:
                self.sides[e[269]][e[270]] = (e[271], e[346])

    def apply(self, msg: FixMessage) -> None:
        assert msg.get(262) == self.req_id
        if msg.msg_type == b"W":
            assert int(msg.get(83) or b"-1") >= self.rpt_seq
            self.reset(msg)
            return
        assert msg.msg_type == b"X"
        for e in entries(msg):
            assert e[55] == self.symbol
            rpt = int(e[83])
            assert rpt == self.rpt_seq + 1, f"gap: {self.rpt_seq} then {rpt}"
            self.rpt_seq = rpt
            kind, action, price = e[269], e[279], e[270]
            if kind == b"2":
                assert action == b"0"
                self.trades.append((price, e[271]))
                continue
            side = self.sides[kind]
            if action == b"0":
                assert price not in side, f"new level {price!r} already there"
                side[price] = (e[271], e[346])
            elif action == b"1":
                assert price in side, f"changed level {price!r} unknown"
                side[price] = (e[271], e[346])
            else:
                assert action == b"2"
                assert price in side, f"deleted level {price!r} unknown"
                del side[price]

    def levels(self) -> list[Level]:
        out: list[Level] = []
        for kind in (b"0", b"1"):
            ordered = sorted(self.sides[kind].items(), key=lambda kv: Decimal(kv[0].decode()))
            if kind == b"0":
                ordered.reverse()
            out += [(kind, price, qty, count) for price, (qty, count) in ordered]
        return out


# -- reference data ----------------------------------------------------------------------------

SOL = InstrumentSpec(
    symbol="SOL-USDT",
    base="SOL",
    quote="USDT",
    tick_size=Decimal("0.005"),
    lot_size=Decimal("10"),
    min_qty=3,
    max_qty=1000,
    min_notional=12345,
    price_band_bps=500,
    initial_state=InstrumentState.HALTED,
)


def security_list(client: Client, body: list[tuple[int, Any]]) -> list[FixMessage]:
    replies = client.send(b"x", body)
    assert replies and all(m.msg_type == b"y" for m in replies)
    return replies


def test_security_list_all_instruments_with_their_rules_and_live_state() -> None:
    feed = Feed(spec(SYM), SOL, spec(SYM2, min_qty=5, min_notional=250_000))
    client = Client(feed)
    feed.send(SetInstrumentState(SYM2, InstrumentState.CANCEL_ONLY))
    (reply,) = security_list(client, [(320, "sl-1"), (559, 4)])
    assert reply.get(320) == b"sl-1"
    assert reply.get(322)
    assert reply.get(560) == b"0"
    assert reply.get(393) == b"3"
    assert reply.get(893) == b"Y"
    assert entries(reply) == [
        {
            55: b"BTC-USD",
            15: b"USD",
            561: b"0.001",
            562: b"0.001",
            969: b"0.01",
            25003: b"0.00000",
            58: b"OPEN",
        },
        {
            55: b"ETH-USD",
            15: b"USD",
            561: b"0.001",
            562: b"0.005",
            969: b"0.01",
            25003: b"2.50000",
            58: b"CANCEL_ONLY",
        },
        {
            55: b"SOL-USDT",
            15: b"USDT",
            561: b"10",
            562: b"30",
            969: b"0.005",
            25003: b"617.25",  # 12345 tick-lots of 0.05
            58: b"HALTED",
        },
    ]


def test_security_list_one_symbol_unknown_symbol_and_invalid_requests() -> None:
    feed = Feed(spec(SYM), SOL)
    client = Client(feed)
    (one,) = security_list(client, [(320, "a"), (559, 0), (55, "SOL-USDT")])
    assert (one.get(560), one.get(393), one.get(893)) == (b"0", b"1", b"Y")
    assert [e[55] for e in entries(one)] == [b"SOL-USDT"]

    (unknown,) = security_list(client, [(320, "b"), (559, 0), (55, "DOGE-USD")])
    assert unknown.get(320) == b"b"
    assert unknown.get(560) == b"2"
    assert unknown.get(146) is None and unknown.get(393) is None

    (no_symbol,) = security_list(client, [(320, "c"), (559, 0)])
    assert no_symbol.get(560) == b"1"
    assert no_symbol.get(146) is None

    (subscribe,) = security_list(client, [(320, "d"), (559, 4), (263, 1)])
    assert subscribe.get(560) == b"1"
    (snapshot,) = security_list(client, [(320, "e"), (559, 4), (263, 0)])
    assert snapshot.get(560) == b"0"
    assert snapshot.get(393) == b"2"
    ids = {m.get(322) for m in (one, unknown, no_symbol, subscribe, snapshot)}
    assert len(ids) == 5, "each response has its own SecurityResponseID"


def test_security_list_is_split_in_fragments_of_100() -> None:
    specs = [spec(f"C{i:03d}-USD") for i in range(250)]
    feed = Feed(*reversed(specs))
    client = Client(feed)
    replies = security_list(client, [(320, "all"), (559, 4)])
    assert [len(entries(m)) for m in replies] == [100, 100, 50]
    assert [m.get(893) for m in replies] == [b"N", b"N", b"Y"]
    assert {m.get(393) for m in replies} == {b"250"}
    assert len({m.get(322) for m in replies}) == 1
    assert {m.get(320) for m in replies} == {b"all"}
    symbols = [e[55] for m in replies for e in entries(m)]
    assert symbols == sorted(s.symbol.encode() for s in specs)


# -- snapshots ---------------------------------------------------------------------------------


def resting_book(feed: Feed) -> None:
    """Bids 100.00 x2 orders, 99.50, 99.00; asks 101.00, 101.50 x2 orders."""
    feed.buy(1, 9900, 7)
    feed.buy(1, 10000, 5)
    feed.buy(2, 9950, 3)
    feed.buy(2, 10000, 4)
    feed.sell(3, 10150, 2)
    feed.sell(3, 10100, 6)
    feed.sell(4, 10150, 8)


def test_snapshot_lists_levels_best_first_bids_then_offers() -> None:
    feed = Feed()
    resting_book(feed)
    client = Client(feed)
    (w,) = client.subscribe("snap", kind=b"0")
    assert w.msg_type == b"W"
    assert (w.get(262), w.get(55), w.get(83)) == (b"snap", b"BTC-USD", b"0")
    assert levels(w) == [
        (b"0", b"100.00", b"0.009", b"2"),
        (b"0", b"99.50", b"0.003", b"1"),
        (b"0", b"99.00", b"0.007", b"1"),
        (b"1", b"101.00", b"0.006", b"1"),
        (b"1", b"101.50", b"0.010", b"2"),
    ]
    assert levels(w) == book_of(feed)
    assert feed.handler.subscription_count(client.session) == 0, "a snapshot is no subscription"


def test_snapshot_depth_and_entry_types_and_empty_book() -> None:
    feed = Feed()
    resting_book(feed)
    client = Client(feed)
    (w,) = client.subscribe("top", kind=b"0", depth=1)
    assert levels(w) == [(b"0", b"100.00", b"0.009", b"2"), (b"1", b"101.00", b"0.006", b"1")]
    (w,) = client.subscribe("asks", kind=b"0", depth=2, types=(b"1",))
    assert levels(w) == [(b"1", b"101.00", b"0.006", b"1"), (b"1", b"101.50", b"0.010", b"2")]
    (w,) = client.subscribe("trades", kind=b"0", types=(b"2",))
    assert w.get(268) == b"0" and entries(w) == []
    (w,) = client.subscribe("empty", (SYM2,), kind=b"0")
    assert (w.get(55), w.get(268), w.get(83)) == (b"ETH-USD", b"0", b"0")


def test_snapshot_of_several_symbols_one_w_each() -> None:
    feed = Feed()
    feed.buy(1, 10000, 1)
    feed.sell(1, 5000, 2, symbol=SYM2)
    client = Client(feed)
    replies = client.subscribe("both", (SYM2, SYM, SYM2), kind=b"0")
    assert [(m.msg_type, m.get(55)) for m in replies] == [(b"W", b"ETH-USD"), (b"W", b"BTC-USD")]
    assert levels(replies[0]) == [(b"1", b"50.00", b"0.002", b"1")]
    assert levels(replies[1]) == [(b"0", b"100.00", b"0.001", b"1")]


# -- increments --------------------------------------------------------------------------------


def x_entries(messages: list[FixMessage]) -> list[XEntry]:
    """Every X entry as (279, 269, 83, 270, 271 or None, 346 or None)."""
    out: list[XEntry] = []
    for msg in messages:
        assert msg.msg_type == b"X"
        for e in entries(msg):
            out.append((e[279], e[269], e[83], e[270], e.get(271), e.get(346)))
    return out


def test_increments_for_new_orders_fills_and_cancels() -> None:
    feed = Feed()
    client = Client(feed)
    (w,) = client.subscribe("md")
    assert (w.get(83), w.get(268)) == (b"0", b"0")
    first = feed.buy(1, 10000, 5)
    assert x_entries(client.take()) == [(b"0", b"0", b"1", b"100.00", b"0.005", b"1")]
    feed.buy(2, 10000, 3)
    assert x_entries(client.take()) == [(b"1", b"0", b"2", b"100.00", b"0.008", b"2")]
    feed.sell(3, 10100, 4)
    assert x_entries(client.take()) == [(b"0", b"1", b"3", b"101.00", b"0.004", b"1")]

    # a sell taking part of the first bid: a trade, then the level's new size
    feed.sell(4, 10000, 2)
    (x,) = client.take()
    assert x_entries([x]) == [
        (b"0", b"2", b"4", b"100.00", b"0.002", None),
        (b"1", b"0", b"5", b"100.00", b"0.006", b"2"),
    ]
    trade = entries(x)[0]
    assert trade[55] == b"BTC-USD"
    stamp = format_utc_timestamp(feed.venue.ts)
    assert (trade[272], trade[273]) == (stamp[:8], stamp[9:])

    # a sell through the whole level: two trades, the level deleted, the rest rests as an ask
    feed.sell(4, 10000, 9)
    assert x_entries(client.take()) == [
        (b"0", b"2", b"6", b"100.00", b"0.003", None),
        (b"0", b"2", b"7", b"100.00", b"0.003", None),
        (b"2", b"0", b"8", b"100.00", None, None),
        (b"0", b"1", b"9", b"100.00", b"0.003", b"1"),
    ]

    # cancels: a level's count and size go down, then it goes
    second_ask = feed.sell(5, 10100, 1)
    assert x_entries(client.take()) == [(b"1", b"1", b"10", b"101.00", b"0.005", b"2")]
    feed.cancel(5, second_ask)
    assert x_entries(client.take()) == [(b"1", b"1", b"11", b"101.00", b"0.004", b"1")]
    feed.cancel(1, first)  # already filled: rejected, nothing to say
    assert client.take() == []
    feed.send(MassCancel(MassCancelScope.INSTRUMENT, instrument=SYM))
    assert x_entries(client.take()) == [
        (b"2", b"1", b"12", b"100.00", None, None),
        (b"2", b"1", b"13", b"101.00", None, None),
    ]


def test_replace_iceberg_stop_and_expiry_keep_the_client_book_exact() -> None:
    feed = Feed()
    client = Client(feed)
    (w,) = client.subscribe("md")
    book = ClientBook(w)

    def check() -> None:
        for msg in client.take():
            book.apply(msg)
        assert book.levels() == book_of(feed)

    moving = feed.buy(1, 9900, 5)
    check()
    feed.send(ReplaceOrder(1, SYM, moving, "", "", 6, 9800))  # moves to another level
    check()
    feed.sell(2, 10100, 10, display_qty=2)  # iceberg: shows 0.002
    check()
    assert book.sides[b"1"][b"101.00"] == (b"0.002", b"1")
    feed.buy(3, 10100, 3)  # takes the shown part and one more after the refresh
    check()
    feed.order(4, SELL, 9700, 2, ord_type=OrdType.STOP_LOSS_LIMIT, stop_price=10000)
    check()
    feed.sell(5, 9800, 1)  # trades at 98.00, below the stop: the stop-limit sells 2 at 98.00
    check()
    assert book.trades[-2:] == [(b"98.00", b"0.001"), (b"98.00", b"0.002")]
    assert book.sides[b"0"] == {b"98.00": (b"0.003", b"1")}
    feed.buy(6, 9000, 1, tif=TimeInForce.GTD, expire_time=feed.venue.ts + 5_000)
    check()
    assert b"90.00" in book.sides[b"0"]
    feed.venue.ts += 10_000
    feed.send(Tick())  # the GTD order expires
    check()
    assert b"90.00" not in book.sides[b"0"]


def test_self_trade_prevention_changes_the_makers_level() -> None:
    feed = Feed()
    client = Client(feed)
    feed.buy(1, 10000, 5)
    feed.buy(2, 9900, 4)
    (w,) = client.subscribe("md", types=BOOK_TYPES)
    # DECREMENT: the maker loses what would have traded, the taker is gone, nothing trades
    feed.sell(1, 10000, 2, stp_mode=StpMode.DECREMENT)
    assert x_entries(client.take()) == [(b"1", b"0", b"1", b"100.00", b"0.003", b"1")]
    # EXPIRE_MAKER: the maker leaves, the taker goes on to the next level
    feed.sell(1, 9900, 1, stp_mode=StpMode.EXPIRE_MAKER)
    assert x_entries(client.take()) == [
        (b"2", b"0", b"2", b"100.00", None, None),
        (b"1", b"0", b"3", b"99.00", b"0.003", b"1"),
    ]
    assert w.get(83) == b"0"


def test_full_refresh_per_change() -> None:
    feed = Feed()
    client = Client(feed)
    (w,) = client.subscribe("full", depth=2, update_type=b"0")
    assert (w.get(83), levels(w)) == (b"0", [])
    feed.buy(1, 10000, 1)
    (w,) = client.take()
    assert (w.msg_type, w.get(262), w.get(83)) == (b"W", b"full", b"1")
    assert levels(w) == [(b"0", b"100.00", b"0.001", b"1")]
    feed.buy(1, 9900, 1)
    feed.buy(1, 9800, 1)  # outside the best 2: no change, no message
    (w,) = client.take()
    assert w.get(83) == b"2"
    feed.sell(2, 10000, 1)  # a trade and the level deleted: both counted, 99.00 and 98.00 shown
    (w,) = client.take()
    assert w.get(83) == b"5"  # trade, delete 100.00, new 98.00
    assert [(e[269], e[270]) for e in entries(w)] == [
        (b"0", b"99.00"),
        (b"0", b"98.00"),
        (b"2", b"100.00"),
    ]


def test_depth_window_levels_entering_and_leaving_are_new_and_delete() -> None:
    feed = Feed()
    feed.buy(1, 10000, 1)
    feed.buy(1, 9900, 1)
    deep = feed.buy(1, 9800, 1)
    client = Client(feed)
    (w,) = client.subscribe("top2", depth=2, types=BOOK_TYPES)
    assert levels(w) == [(b"0", b"100.00", b"0.001", b"1"), (b"0", b"99.00", b"0.001", b"1")]
    book = ClientBook(w)

    better = feed.buy(2, 10100, 1)  # enters at the top: 99.00 leaves the window
    msgs = client.take()
    assert x_entries(msgs) == [
        (b"2", b"0", b"1", b"99.00", None, None),
        (b"0", b"0", b"2", b"101.00", b"0.001", b"1"),
    ]
    feed.cancel(1, deep)  # outside the window: nothing
    feed.buy(2, 9700, 5)
    assert client.take() == []
    feed.cancel(2, better)  # leaves: 99.00 comes back as new
    msgs += client.take()
    assert x_entries(msgs[1:]) == [
        (b"2", b"0", b"3", b"101.00", None, None),
        (b"0", b"0", b"4", b"99.00", b"0.001", b"1"),
    ]
    for msg in msgs:
        book.apply(msg)
    assert book.levels() == book_of(feed, depth=2)
    feed.sell(3, 10200, 1)  # the ask side had been empty
    assert x_entries(client.take()) == [(b"0", b"1", b"5", b"102.00", b"0.001", b"1")]


def test_trades_only_and_other_symbols_are_not_sent() -> None:
    feed = Feed()
    client = Client(feed)
    client.subscribe("trades", types=(b"2",))
    feed.buy(1, 10000, 2)
    feed.buy(1, 5000, 2, symbol=SYM2)
    feed.sell(2, 5000, 2, symbol=SYM2)  # a trade on the other symbol
    assert client.take() == []
    feed.sell(2, 10000, 1)
    assert x_entries(client.take()) == [(b"0", b"2", b"1", b"100.00", b"0.001", None)]


def test_a_large_change_is_split_with_continuous_rpt_seq() -> None:
    feed = Feed()
    for i in range(150):
        feed.buy(1, 10000 - i, 1)
    client = Client(feed)
    (w,) = client.subscribe("deep", types=BOOK_TYPES)
    assert len(levels(w)) == 150
    book = ClientBook(w)
    feed.send(MassCancel(MassCancelScope.ACCOUNT, account=1))
    msgs = client.take()
    assert [len(entries(m)) for m in msgs] == [MAX_ENTRIES_PER_INCREMENT, 50]
    for msg in msgs:
        book.apply(msg)
    assert book.rpt_seq == 150
    assert book.levels() == []


# -- subscriptions -----------------------------------------------------------------------------


def test_two_subscribers_see_identical_rpt_seqs() -> None:
    feed = Feed()
    a = Client(feed, "MDA")
    b = Client(feed, "MDB")
    (wa,) = a.subscribe("a")
    feed.buy(1, 10000, 1)
    feed.buy(1, 9900, 1)
    (wb,) = b.subscribe("b")
    assert (wa.get(83), wb.get(83)) == (b"0", b"2")
    book_a, book_b = ClientBook(wa), ClientBook(wb)
    for msg in a.take():
        book_a.apply(msg)
    feed.sell(2, 9900, 2)
    feed.sell(2, 10300, 1)
    got_a, got_b = a.take(), b.take()
    assert x_entries(got_a) == x_entries(got_b) != []
    assert {m.get(262) for m in got_a} == {b"a"} and {m.get(262) for m in got_b} == {b"b"}
    for msg in got_a:
        book_a.apply(msg)
    for msg in got_b:
        book_b.apply(msg)
    assert book_a.rpt_seq == book_b.rpt_seq > 2
    assert book_a.levels() == book_b.levels() == book_of(feed)


def test_rpt_seq_of_a_symbol_never_goes_back_between_subscriptions() -> None:
    feed = Feed()
    client = Client(feed)
    client.subscribe("one")
    feed.buy(1, 10000, 1)
    feed.buy(1, 10001, 1)
    client.take()
    client.send(b"V", md_request("one", kind=b"2"))
    (w,) = client.subscribe("two", depth=1)
    assert w.get(83) == b"2"
    (w,) = client.subscribe("peek", kind=b"0", types=(b"1",))
    assert w.get(83) == b"2"


def test_unsubscribe_stops_updates() -> None:
    feed = Feed()
    client = Client(feed)
    client.subscribe("md", (SYM, SYM2))
    client.subscribe("md2", (SYM,), depth=1)
    assert feed.handler.subscription_count(client.session) == 3
    assert client.send(b"V", md_request("md", kind=b"2")) == []
    assert feed.handler.subscription_count(client.session) == 1
    feed.buy(1, 5000, 1, symbol=SYM2)
    assert client.take() == []
    feed.buy(1, 10000, 1)
    assert {m.get(262) for m in client.take()} == {b"md2"}
    (reject,) = client.send(b"V", md_request("md", kind=b"2"))
    assert (reject.msg_type, reject.get(262), reject.get(281)) == (b"Y", b"md", None)
    assert reject.get(58) == b"unknown MDReqID"
    (w,) = client.subscribe("md")  # the id can be used again
    assert w.msg_type == b"W"


def test_session_closed_drops_its_subscriptions() -> None:
    feed = Feed()
    gone = Client(feed, "GONE")
    stays = Client(feed, "STAYS")
    gone.subscribe("g", (SYM, SYM2))
    stays.subscribe("s")
    gone.close()  # the session's on_logout tells the handler
    assert feed.handler.subscription_count(gone.session) == 0
    feed.buy(1, 10000, 1)
    feed.buy(1, 5000, 1, symbol=SYM2)
    assert gone.wire[gone.read :] == []
    assert gone.session.store.get(1, 1000) == [], "market data is never stored for resends"
    assert len(stays.take()) == 1
    stays.feed.handler.session_closed(stays.session)
    assert feed.handler._tracked == {}, "no subscriber left: nothing tracked"


def test_events_of_unsubscribed_instruments_cost_no_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed = Feed()
    client = Client(feed)
    client.subscribe("md", (SYM2,))
    calls = []
    core = feed.venue.core

    class CountingCore:
        markets = core.markets

        def order(self, account: int, order_id: int) -> Any:
            calls.append(order_id)
            return core.order(account, order_id)

    monkeypatch.setattr(feed.handler, "_core", CountingCore())
    feed.buy(1, 10000, 1)
    feed.sell(2, 10000, 1)
    assert calls == [] and client.take() == []
    feed.buy(1, 5000, 1, symbol=SYM2)
    assert calls and len(client.take()) == 1


# -- rejects -----------------------------------------------------------------------------------


def reject_of(replies: list[FixMessage]) -> tuple[bytes | None, bytes | None, bytes | None]:
    (reply,) = replies
    assert reply.msg_type == b"Y"
    return reply.get(262), reply.get(281), reply.get(58)


def test_rejects_through_the_session() -> None:
    feed = Feed(spec(SYM), spec(SYM2), spec("SOL-USD"), max_symbols_per_request=2)
    client = Client(feed, max_subscriptions=3)
    assert reject_of(client.subscribe("u", ("BTC-USD", "NOPE"))) == (
        b"u",
        b"0",
        b"unknown symbol NOPE",
    )
    client.subscribe("dup")
    assert reject_of(client.subscribe("dup", (SYM2,)))[:2] == (b"dup", b"1")
    assert reject_of(client.subscribe("dup", (SYM2,), kind=b"0"))[:2] == (b"dup", b"1")
    assert reject_of(client.subscribe("neg", depth=-1))[:2] == (b"neg", b"5")
    assert reject_of(client.subscribe("agg", aggregated=b"N"))[:2] == (b"agg", b"7")
    assert client.subscribe("aggy", kind=b"0", aggregated=b"Y")[0].msg_type == b"W"
    assert reject_of(client.subscribe("many", (SYM, SYM2, "SOL-USD"))) == (
        b"many",
        None,
        b"too many symbols",
    )
    client.subscribe("two", (SYM, SYM2))
    assert feed.handler.subscription_count(client.session) == 3
    assert reject_of(client.subscribe("over", ("SOL-USD",))) == (
        b"over",
        None,
        b"subscription limit",
    )
    assert client.subscribe("snap", ("SOL-USD",), kind=b"0")[0].msg_type == b"W"
    assert feed.handler.subscription_count(client.session) == 3
    # a rejected request changed nothing
    feed.buy(1, 10000, 1, symbol="SOL-USD")
    assert client.take() == []


def test_rejects_of_values_the_dictionary_already_refuses() -> None:
    """The session rejects these values first (373=5); the handler still answers them right."""
    feed = Feed()
    client = Client(feed)

    def direct(body: list[tuple[int, Any]]) -> tuple[bytes | None, ...]:
        msg = client.message(b"V", body)
        assert DICT.validate(msg) is not None
        feed.handler.market_data_request(client.session, msg, 100)
        return reject_of(client.take())[:2]

    assert direct(md_request("k", kind=b"5")) == (b"k", b"4")
    assert direct(md_request("u", update_type=b"2")) == (b"u", b"6")
    assert direct(md_request("t", types=(b"0", b"B"))) == (b"t", b"8")
    assert direct(md_request("d", depth="x")) == (b"d", b"5")  # type: ignore[arg-type]
    assert feed.handler.subscription_count(client.session) == 0


def test_request_without_entry_types_or_symbols_is_rejected() -> None:
    feed = Feed()
    client = Client(feed)
    assert reject_of(client.subscribe("nt", types=()))[:2] == (b"nt", b"8")
    assert reject_of(client.subscribe("ns", ()))[1:] == (None, b"no symbols")


# -- property: increments applied to the snapshot give the book --------------------------------

ACTIONS = st.lists(
    st.tuples(
        st.integers(0, 9),  # what
        st.booleans(),  # side
        st.integers(0, 8),  # price offset
        st.integers(1, 5),  # quantity
        st.integers(1, 2),  # account: two, so that self-trades happen
        st.integers(0, 50),  # which order
    ),
    min_size=1,
    max_size=60,
)
VIEWS = (
    ("full", 0, ALL_TYPES, None),
    ("top3", 3, BOOK_TYPES, None),
    ("bids", 0, (b"0",), None),
    ("top1-full-refresh", 1, ALL_TYPES, b"0"),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=ACTIONS, after=ACTIONS)
def test_increments_applied_to_the_snapshot_reproduce_the_book(
    before: list[tuple[int, ...]], after: list[tuple[int, ...]]
) -> None:
    feed = Feed()
    run(feed, before)
    subscribed_at = len(feed.venue.log)
    clients = [Client(feed, f"MD{i}") for i in range(len(VIEWS))]
    books: list[ClientBook] = []
    for client, (req_id, depth, types, update) in zip(clients, VIEWS, strict=True):
        (w,) = client.subscribe(req_id, depth=depth, types=types, update_type=update)
        books.append(ClientBook(w))
    twin = Client(feed, "TWIN")
    (w,) = twin.subscribe("twin")
    twin_book = ClientBook(w)

    def check() -> None:
        for client, book, (req_id, depth, types, _) in zip(clients, books, VIEWS, strict=True):
            for msg in client.take():
                book.apply(msg)
            book_types = tuple(t for t in types if t != b"2")
            assert book.levels() == book_of(feed, depth=depth, types=book_types), req_id
            (fresh,) = client.subscribe(
                f"fresh-{feed.venue.seq}", kind=b"0", depth=depth, types=types
            )
            assert levels(fresh) == book.levels()
            assert int(fresh.get(83) or b"-1") == book.rpt_seq
        received = twin.take()
        for msg in received:
            twin_book.apply(msg)
        assert twin_book.rpt_seq == books[0].rpt_seq

    run(feed, after, check)
    trades = [
        (e.price, e.qty)
        for _, events in feed.venue.log[subscribed_at:]
        for e in events
        if isinstance(e, Trade) and e.instrument == SYM
    ]
    assert [(_fmt(p * TICK, TICK), _fmt(q * LOT, LOT)) for p, q in trades] == books[0].trades


def run(feed: Feed, actions: list[tuple[int, ...]], check: Any = None) -> None:
    core = feed.venue.core
    for what, is_buy, offset, qty, account, pick in actions:
        side = BUY if is_buy else SELL
        price = 1000 + offset
        live = [o for a in (1, 2) for o in core.open_orders(a) if o.instrument == SYM]
        chosen = live[pick % len(live)] if live else None
        if what <= 2:
            feed.order(account, side, price, qty)
        elif what == 3:
            feed.order(account, side, price, qty + 2, display_qty=1)
        elif what == 4:
            feed.order(account, side, price, qty, tif=TimeInForce.IOC)
        elif what == 5:
            feed.order(account, side, 0, qty, ord_type=OrdType.MARKET)
        elif what == 6 and chosen is not None:
            feed.cancel(chosen.account, chosen.order_id)
        elif what == 7 and chosen is not None:
            feed.send(ReplaceOrder(chosen.account, SYM, chosen.order_id, "", "", qty + 3, price))
        elif what == 8:
            stop = price + 1 if is_buy else price - 1
            feed.order(account, side, price, qty, ord_type=OrdType.STOP_LOSS_LIMIT, stop_price=stop)
        elif what == 9:
            feed.order(account, side, price, qty, stp_mode=StpMode.DECREMENT)
        else:
            feed.send(MassCancel(MassCancelScope.ACCOUNT, account=account))
        feed.order(account, side, price, 1, symbol=SYM2)  # noise on an unwatched instrument
        if check is not None:
            check()


def test_every_event_about_an_instrument_is_looked_at() -> None:
    """Market data follows every event of the matching stage that names an instrument; the risk
    stage's money events (a settlement repeats its trade's instrument) change no book."""
    from dataclasses import fields
    from typing import get_args

    from engine.events import MoneyEvent
    from gateway.fix import marketdata

    named = {
        cls
        for cls in get_args(Event)
        if "instrument" in {f.name for f in fields(cls)} and cls not in get_args(MoneyEvent)
    }
    followed = set(marketdata._NAMES_INSTRUMENT)
    for cls in followed:
        named = {n for n in named if not issubclass(n, cls)}
    assert named == set()
