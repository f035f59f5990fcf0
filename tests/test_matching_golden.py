"""Golden event streams for every matching rule of the core (see engine/core.py's docstring).

Each test drives a fresh core and compares the whole list of events of a command with the
expected list, in the compact form of ``helpers.compact`` (the driver checks the account, client
order id and instrument of every event that names an order against the order's acceptance).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from helpers import DAY_NS, MIDNIGHT, NS, SYM, SYM2, T0, Venue, spec

from engine.commands import NewOrder, Tick
from engine.core import Core
from engine.errors import SequenceError
from engine.instrument import UnitError, spec_from_decimals
from engine.order import Order
from engine.types import (
    CancelReason,
    InstrumentState,
    MassCancelScope,
    OrderStatus,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, LIMIT_MAKER = OrdType.LIMIT, OrdType.MARKET, OrdType.LIMIT_MAKER
SL, SLL = OrdType.STOP_LOSS, OrdType.STOP_LOSS_LIMIT
TP, TPL = OrdType.TAKE_PROFIT, OrdType.TAKE_PROFIT_LIMIT
IOC, FOK, GTD, DAY = TimeInForce.IOC, TimeInForce.FOK, TimeInForce.GTD, TimeInForce.DAY


def acc(
    oid: int,
    acct: int,
    clid: str,
    side: str,
    typ: str,
    price: int,
    qty: int,
    tif: str = "GTC",
    status: str = "NEW",
    *,
    quote: int = 0,
    stop: int = 0,
    display: int = 0,
    expire: int = 0,
    stp: str = "EXPIRE_TAKER",
    session: str = "",
    inst: str = "",
) -> tuple[Any, ...]:
    """The expected compact OrderAccepted."""
    opts = [
        f"{k}={v}"
        for k, v in (("quote", quote), ("stop", stop), ("display", display), ("expire", expire))
        if v
    ]
    opts.append(f"stp={stp}")
    if session:
        opts.append(f"session={session}")
    if inst:
        opts.append(f"inst={inst}")
    return ("Accepted", oid, acct, clid, side, typ, tif, price, qty, status, *opts)


def trade(
    tid: int,
    price: int,
    qty: int,
    taker_side: str,
    maker: int,
    maker_leaves: int,
    maker_cum: int,
    taker: int,
    taker_leaves: int,
    taker_cum: int,
) -> tuple[Any, ...]:
    return (
        "Trade",
        tid,
        price,
        qty,
        taker_side,
        maker,
        maker_leaves,
        maker_cum,
        taker,
        taker_leaves,
        taker_cum,
    )


def status_of(order: Order | None) -> OrderStatus:
    assert order is not None
    return order.status


# ============================================================================ LIMIT orders
def test_limit_rests_on_empty_book() -> None:
    v = Venue()
    assert v.buy(1, 100, 5, clid="b1") == [acc(1, 1, "b1", "BUY", "LIMIT", 100, 5)]
    assert v.sell(2, 105, 3, clid="s1") == [acc(2, 2, "s1", "SELL", "LIMIT", 105, 3)]
    assert v.bids() == [(100, 5, 1)]
    assert v.asks() == [(105, 3, 1)]
    assert status_of(v.get(1, 1)) == OrderStatus.NEW
    assert [o.order_id for o in v.core.open_orders(1)] == [1]
    assert v.core.order(2, 1) is None  # another account's order is not visible


def test_limit_crossing_fills_at_maker_price() -> None:
    v = Venue()
    v.sell(1, 101, 3, clid="s")
    maker = v.get(1, 1)
    assert v.buy(2, 103, 2, clid="b") == [
        acc(2, 2, "b", "BUY", "LIMIT", 103, 2),
        trade(1, 101, 2, "BUY", 1, 1, 2, 2, 0, 2),
    ]
    assert v.asks() == [(101, 1, 1)]
    assert v.bids() == []
    assert status_of(maker) == OrderStatus.PARTIALLY_FILLED
    assert v.get(2, 2) is None  # filled taker is not live
    assert v.buy(3, 101, 1, clid="b2") == [
        acc(3, 3, "b2", "BUY", "LIMIT", 101, 1),
        trade(2, 101, 1, "BUY", 1, 0, 3, 3, 0, 1),
    ]
    assert status_of(maker) == OrderStatus.FILLED
    assert v.get(1, 1) is None
    assert v.asks() == []


def test_limit_sell_crossing_takes_best_bid_first() -> None:
    v = Venue()
    v.buy(1, 99, 2, clid="b1")
    v.buy(1, 100, 2, clid="b2")
    assert v.sell(2, 99, 3, clid="s") == [
        acc(3, 2, "s", "SELL", "LIMIT", 99, 3),
        trade(1, 100, 2, "SELL", 2, 0, 2, 3, 1, 2),
        trade(2, 99, 1, "SELL", 1, 1, 1, 3, 0, 3),
    ]
    assert v.bids() == [(99, 1, 1)]


def test_partial_fills_across_levels_then_rest() -> None:
    v = Venue()
    v.sell(1, 101, 2, clid="a")
    v.sell(1, 102, 3, clid="b")
    v.sell(1, 103, 4, clid="c")
    assert v.buy(2, 102, 6, clid="t") == [
        acc(4, 2, "t", "BUY", "LIMIT", 102, 6),
        trade(1, 101, 2, "BUY", 1, 0, 2, 4, 4, 2),
        trade(2, 102, 3, "BUY", 2, 0, 3, 4, 1, 5),
    ]
    assert v.bids() == [(102, 1, 1)]
    assert v.asks() == [(103, 4, 1)]
    taker = v.get(2, 4)
    assert taker is not None
    assert (taker.leaves, taker.cum_qty) == (1, 5)


def test_taker_partially_filled_then_resting_reports_partially_filled() -> None:
    v = Venue()
    v.sell(1, 101, 2)
    v.buy(2, 101, 5)
    taker = v.get(2, 2)
    assert taker is not None and taker.cum_qty == 2
    assert taker.status == OrderStatus.PARTIALLY_FILLED


def test_price_time_priority() -> None:
    v = Venue()
    v.sell(1, 101, 2, clid="first")
    v.sell(2, 101, 2, clid="second")
    v.sell(3, 100, 1, clid="better")  # later, but a better price
    assert v.ask_ids() == [3, 1, 2]
    assert v.asks() == [(100, 1, 1), (101, 4, 2)]
    assert v.buy(4, 101, 4, clid="t") == [
        acc(4, 4, "t", "BUY", "LIMIT", 101, 4),
        trade(1, 100, 1, "BUY", 3, 0, 1, 4, 3, 1),
        trade(2, 101, 2, "BUY", 1, 0, 2, 4, 1, 3),
        trade(3, 101, 1, "BUY", 2, 1, 1, 4, 0, 4),
    ]
    assert v.ask_ids() == [2]


# ============================================================================ MARKET orders
def test_market_by_base_qty() -> None:
    v = Venue()
    v.sell(1, 101, 2)
    v.sell(1, 102, 2)
    assert v.order(2, BUY, MARKET, 3, clid="m") == [
        acc(3, 2, "m", "BUY", "MARKET", 0, 3, "IOC"),
        trade(1, 101, 2, "BUY", 1, 0, 2, 3, 1, 2),
        trade(2, 102, 1, "BUY", 2, 1, 1, 3, 0, 3),
    ]
    assert v.asks() == [(102, 1, 1)]


def test_market_sell_by_base_qty_remainder_expires_no_liquidity() -> None:
    v = Venue()
    v.buy(1, 100, 2)
    assert v.order(2, SELL, MARKET, 5, clid="m") == [
        acc(2, 2, "m", "SELL", "MARKET", 0, 5, "IOC"),
        trade(1, 100, 2, "SELL", 1, 0, 2, 2, 3, 2),
        ("Expired", 2, 3, 2, "NO_LIQUIDITY"),
    ]
    assert v.bids() == []


def test_market_on_empty_book_expires_no_liquidity() -> None:
    v = Venue()
    assert v.order(1, BUY, MARKET, 5, clid="m") == [
        acc(1, 1, "m", "BUY", "MARKET", 0, 5, "IOC"),
        ("Expired", 1, 5, 0, "NO_LIQUIDITY"),
    ]
    # with a reference price, an empty book is still NO_LIQUIDITY
    v.set_reference(100)
    assert v.order(1, SELL, MARKET, 2, clid="m2") == [
        acc(2, 1, "m2", "SELL", "MARKET", 0, 2, "IOC"),
        ("Expired", 2, 2, 0, "NO_LIQUIDITY"),
    ]


def test_market_buy_by_quote_amount() -> None:
    v = Venue()
    v.sell(1, 100, 2)
    v.sell(1, 110, 5)
    # 430 tick-lots: 2 lots at 100 (200), 2 lots at 110 (220); 10 left buys no lot -> filled
    assert v.order(2, BUY, MARKET, quote_qty=430, clid="q") == [
        acc(3, 2, "q", "BUY", "MARKET", 0, 0, "IOC", quote=430),
        trade(1, 100, 2, "BUY", 1, 0, 2, 3, 2, 2),
        trade(2, 110, 2, "BUY", 2, 3, 2, 3, 0, 4),
    ]
    assert v.asks() == [(110, 3, 1)]


def test_market_buy_by_quote_amount_exact_spend() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    assert v.order(2, BUY, MARKET, quote_qty=300, clid="q") == [
        acc(2, 2, "q", "BUY", "MARKET", 0, 0, "IOC", quote=300),
        trade(1, 100, 3, "BUY", 1, 2, 3, 2, 0, 3),
    ]


def test_market_buy_by_quote_rest_cannot_buy_a_lot_at_next_price_is_filled() -> None:
    """After 1 lot at 100, 130 is left: it bought one more lot at 100 but cannot buy one at the
    next price (140). Nothing more can be bought, so the order ends filled, with no expiry."""
    v = Venue(spec(band_bps=5_000))
    v.sell(1, 100, 1)
    v.sell(1, 140, 5)
    assert v.order(2, BUY, MARKET, quote_qty=230, clid="q") == [
        acc(3, 2, "q", "BUY", "MARKET", 0, 0, "IOC", quote=230),
        # its last Trade says taker_leaves 0: the order is done (filled)
        trade(1, 100, 1, "BUY", 1, 0, 1, 3, 0, 1),
    ]
    assert v.asks() == [(140, 5, 1)]


def test_market_buy_by_quote_book_runs_dry() -> None:
    v = Venue()
    v.sell(1, 100, 2)
    assert v.order(2, BUY, MARKET, quote_qty=1_000, clid="q") == [
        acc(2, 2, "q", "BUY", "MARKET", 0, 0, "IOC", quote=1_000),
        trade(1, 100, 2, "BUY", 1, 0, 2, 2, 8, 2),
        ("Expired", 2, 8, 2, "NO_LIQUIDITY"),
    ]


def test_market_sell_by_quote_amount() -> None:
    v = Venue()
    v.buy(1, 100, 5)
    v.buy(1, 90, 5)
    # 650: 5 lots at 100 (500), then 150 left buys 1 lot at 90, 60 left is below one lot at 90
    assert v.order(2, SELL, MARKET, quote_qty=650, clid="q") == [
        acc(3, 2, "q", "SELL", "MARKET", 0, 0, "IOC", quote=650),
        trade(1, 100, 5, "SELL", 1, 0, 5, 3, 1, 5),
        trade(2, 90, 1, "SELL", 2, 4, 1, 3, 0, 6),
    ]
    assert v.bids() == [(90, 4, 1)]


def test_market_buy_protection_stops_at_band_edge() -> None:
    v = Venue(spec(band_bps=500))
    v.sell(1, 104, 1)
    v.sell(1, 105, 1)
    v.sell(1, 106, 5)
    v.set_reference(100)  # band [95, 105]
    assert v.order(2, BUY, MARKET, 5, clid="m") == [
        acc(4, 2, "m", "BUY", "MARKET", 0, 5, "IOC"),
        trade(1, 104, 1, "BUY", 1, 0, 1, 4, 4, 1),
        trade(2, 105, 1, "BUY", 2, 0, 1, 4, 3, 2),
        ("Expired", 4, 3, 2, "MARKET_PROTECTION"),
    ]
    assert v.asks() == [(106, 5, 1)]


def test_market_sell_protection_stops_at_band_edge() -> None:
    v = Venue(spec(band_bps=500))
    v.buy(1, 96, 1)
    v.buy(1, 95, 1)
    v.buy(1, 94, 1)
    v.set_reference(100)  # band [95, 105]
    assert v.order(2, SELL, MARKET, 4, clid="m") == [
        acc(4, 2, "m", "SELL", "MARKET", 0, 4, "IOC"),
        trade(1, 96, 1, "SELL", 1, 0, 1, 4, 3, 1),
        trade(2, 95, 1, "SELL", 2, 0, 1, 4, 2, 2),
        ("Expired", 4, 2, 2, "MARKET_PROTECTION"),
    ]


def test_market_band_from_best_price_without_reference() -> None:
    """No trade and no reference: the band is taken around the best opposite price."""
    v = Venue(spec(band_bps=1_000))  # 10% around 100 -> up to 110
    v.sell(1, 100, 1)
    v.sell(1, 110, 1)
    v.sell(1, 111, 1)
    assert v.order(2, BUY, MARKET, 3, clid="m") == [
        acc(4, 2, "m", "BUY", "MARKET", 0, 3, "IOC"),
        trade(1, 100, 1, "BUY", 1, 0, 1, 4, 2, 1),
        trade(2, 110, 1, "BUY", 2, 0, 1, 4, 1, 2),
        ("Expired", 4, 1, 2, "MARKET_PROTECTION"),
    ]


def test_market_by_quote_protection() -> None:
    v = Venue(spec(band_bps=500))
    v.sell(1, 106, 5)
    v.set_reference(100)
    assert v.order(2, BUY, MARKET, quote_qty=1_000, clid="q") == [
        acc(2, 2, "q", "BUY", "MARKET", 0, 0, "IOC", quote=1_000),
        ("Expired", 2, 9, 0, "MARKET_PROTECTION"),  # 1000 // 106
    ]


# ============================================================================ stop orders
def _seed_last_price(v: Venue) -> None:
    """Orders 1 and 2 trade 1 lot at 100 (trade 1): last price 100."""
    v.sell(1, 100, 1, clid="seed-s")
    v.buy(2, 100, 1, clid="seed-b")


STOP_CASES = [
    # side, type, stop, limit price, rising
    ("BUY", "STOP_LOSS", 105, 0, True),
    ("BUY", "STOP_LOSS_LIMIT", 105, 106, True),
    ("SELL", "TAKE_PROFIT", 105, 0, True),
    ("SELL", "TAKE_PROFIT_LIMIT", 105, 104, True),
    ("SELL", "STOP_LOSS", 95, 0, False),
    ("SELL", "STOP_LOSS_LIMIT", 95, 94, False),
    ("BUY", "TAKE_PROFIT", 95, 0, False),
    ("BUY", "TAKE_PROFIT_LIMIT", 95, 96, False),
]


@pytest.mark.parametrize(("side", "typ", "stop", "limit", "rising"), STOP_CASES)
def test_stop_orders_golden(side: str, typ: str, stop: int, limit: int, rising: bool) -> None:
    v = Venue()
    _seed_last_price(v)
    ord_type = OrdType[typ]
    stop_side = Side[side]
    other = SELL if stop_side == BUY else BUY
    tif = "GTC"  # a stop-market order keeps its time in force while it waits
    assert v.order(3, stop_side, ord_type, 2, limit, stop_price=stop, clid="stop") == [
        acc(3, 3, "stop", side, typ, limit, 2, tif, "PENDING_TRIGGER", stop=stop)
    ]
    order = v.get(3, 3)
    assert status_of(order) == OrderStatus.PENDING_TRIGGER
    assert v.stop_ids() == [3]
    assert v.bids() == [] and v.asks() == []
    # order 4 rests at the stop price and order 6 takes it; order 5 is the liquidity the
    # triggered stop trades with (behind order 4 at the same price, or on the other side).
    trigger_maker_side = SELL if rising else BUY
    v.order(4, trigger_maker_side, LIMIT, 1, stop, clid="m")
    if rising:
        liq_price = 105 if stop_side == BUY else 104
    else:
        liq_price = 95 if stop_side == SELL else 96
    v.order(5, other, LIMIT, 3, liq_price, clid="liq")
    taker_side = "BUY" if rising else "SELL"
    assert v.order(7, Side[taker_side], LIMIT, 1, stop, clid="t") == [
        acc(6, 7, "t", taker_side, "LIMIT", stop, 1),
        trade(2, stop, 1, taker_side, 4, 0, 1, 6, 0, 1),
        ("Triggered", 3, stop, stop),
        trade(3, liq_price, 2, side, 5, 1, 2, 3, 0, 2),
    ]
    assert status_of(order) == OrderStatus.FILLED
    assert v.stop_ids() == []
    assert v.get(3, 3) is None


@pytest.mark.parametrize(("side", "typ", "stop", "limit", "rising"), STOP_CASES)
def test_stop_would_trigger_immediately(
    side: str, typ: str, stop: int, limit: int, rising: bool
) -> None:
    v = Venue()
    _seed_last_price(v)
    at_last = v.order(3, Side[side], OrdType[typ], 2, limit, stop_price=100, clid="x")
    assert at_last == [("Rejected", 3, "x", "WOULD_TRIGGER_IMMEDIATELY")]
    beyond = 99 if rising else 101
    assert v.order(3, Side[side], OrdType[typ], 2, limit, stop_price=beyond, clid="y") == [
        ("Rejected", 3, "y", "WOULD_TRIGGER_IMMEDIATELY")
    ]
    assert v.stop_ids() == []


def test_stops_before_any_trade_never_trigger_immediately() -> None:
    v = Venue()
    assert v.order(1, BUY, SL, 1, stop_price=50, clid="s") == [
        acc(1, 1, "s", "BUY", "STOP_LOSS", 0, 1, "GTC", "PENDING_TRIGGER", stop=50)
    ]


def test_several_stops_enter_in_trigger_order() -> None:
    """One sweep triggers four sell stops: they enter nearest stop price first (the first the
    price reached), then by acceptance time; each is reported with the last price as it
    enters."""
    v = Venue()
    _seed_last_price(v)  # last 100
    v.order(3, SELL, SL, 1, stop_price=98, clid="s98")  # 3
    v.order(3, SELL, SL, 1, stop_price=99, clid="s99a")  # 4
    v.order(4, SELL, SL, 1, stop_price=99, clid="s99b")  # 5
    v.order(3, SELL, SL, 1, stop_price=97, clid="s97")  # 6
    assert v.stop_ids() == [4, 5, 3, 6]
    v.buy(5, 99, 1)  # 7
    v.buy(5, 98, 1)  # 8
    v.buy(5, 97, 1)  # 9
    v.buy(6, 90, 10)  # 10
    assert v.sell(7, 97, 3, clid="sweep") == [
        acc(11, 7, "sweep", "SELL", "LIMIT", 97, 3),
        trade(2, 99, 1, "SELL", 7, 0, 1, 11, 2, 1),
        trade(3, 98, 1, "SELL", 8, 0, 1, 11, 1, 2),
        trade(4, 97, 1, "SELL", 9, 0, 1, 11, 0, 3),
        ("Triggered", 4, 99, 99),
        trade(5, 90, 1, "SELL", 10, 9, 1, 4, 0, 1),
        ("Triggered", 5, 99, 99),
        trade(6, 90, 1, "SELL", 10, 8, 2, 5, 0, 1),
        ("Triggered", 3, 98, 98),
        trade(7, 90, 1, "SELL", 10, 7, 3, 3, 0, 1),
        ("Triggered", 6, 97, 97),
        trade(8, 90, 1, "SELL", 10, 6, 4, 6, 0, 1),
    ]
    assert v.stop_ids() == []


def test_rising_stops_at_one_price_enter_in_acceptance_order() -> None:
    v = Venue()
    _seed_last_price(v)  # last 100
    v.order(3, BUY, SL, 1, stop_price=102, clid="a")  # 3
    v.order(4, SELL, TP, 1, stop_price=101, clid="b")  # 4
    v.order(3, BUY, SLL, 1, 110, stop_price=102, clid="c")  # 5
    v.order(4, BUY, SL, 1, stop_price=101, clid="d")  # 6
    assert v.stop_ids() == [4, 6, 3, 5]
    v.sell(5, 102, 10)  # 7: liquidity for the buys
    v.buy(6, 95, 10)  # 8: liquidity for the sell
    assert v.buy(7, 102, 1, clid="t") == [
        acc(9, 7, "t", "BUY", "LIMIT", 102, 1),
        trade(2, 102, 1, "BUY", 7, 9, 1, 9, 0, 1),
        ("Triggered", 4, 101, 102),
        trade(3, 95, 1, "SELL", 8, 9, 1, 4, 0, 1),
        ("Triggered", 6, 101, 102),
        trade(4, 102, 1, "BUY", 7, 8, 2, 6, 0, 1),
        ("Triggered", 3, 102, 102),
        trade(5, 102, 1, "BUY", 7, 7, 3, 3, 0, 1),
        ("Triggered", 5, 102, 102),
        trade(6, 102, 1, "BUY", 7, 6, 4, 5, 0, 1),
    ]


def test_stop_cascade() -> None:
    v = Venue()
    _seed_last_price(v)
    v.order(3, SELL, SL, 2, stop_price=99, clid="a")  # 3
    v.order(3, SELL, SL, 1, stop_price=95, clid="b")  # 4
    v.buy(4, 99, 1)  # 5
    v.buy(4, 95, 2)  # 6
    v.buy(4, 94, 5)  # 7
    assert v.sell(5, 99, 1, clid="t") == [
        acc(8, 5, "t", "SELL", "LIMIT", 99, 1),
        trade(2, 99, 1, "SELL", 5, 0, 1, 8, 0, 1),
        ("Triggered", 3, 99, 99),
        trade(3, 95, 2, "SELL", 6, 0, 2, 3, 0, 2),
        ("Triggered", 4, 95, 95),
        trade(4, 94, 1, "SELL", 7, 4, 1, 4, 0, 1),
    ]


def test_triggered_stop_limit_rests_when_not_marketable() -> None:
    v = Venue()
    _seed_last_price(v)
    v.order(3, BUY, SLL, 2, 103, stop_price=105, clid="s")  # 3: buy up to 103 once at 105
    v.sell(4, 105, 1)  # 4
    assert v.buy(5, 105, 1, clid="t") == [
        acc(5, 5, "t", "BUY", "LIMIT", 105, 1),
        trade(2, 105, 1, "BUY", 4, 0, 1, 5, 0, 1),
        ("Triggered", 3, 105, 105),
    ]
    assert v.bid_ids() == [3]
    assert status_of(v.get(3, 3)) == OrderStatus.NEW


def test_triggered_stop_limit_outside_band_expires() -> None:
    v = Venue(spec(band_bps=1_000))
    _seed_last_price(v)
    # a stop-limit's price is not checked against the band when accepted ...
    assert v.order(3, BUY, SLL, 2, 120, stop_price=105, clid="s") == [
        acc(3, 3, "s", "BUY", "STOP_LOSS_LIMIT", 120, 2, "GTC", "PENDING_TRIGGER", stop=105)
    ]
    v.sell(4, 105, 1)
    # ... but when it triggers: band around 105 is [95, 115]
    assert v.buy(5, 105, 1, clid="t") == [
        acc(5, 5, "t", "BUY", "LIMIT", 105, 1),
        trade(2, 105, 1, "BUY", 4, 0, 1, 5, 0, 1),
        ("Triggered", 3, 105, 105),
        ("Expired", 3, 2, 0, "TRIGGERED_OUTSIDE_BAND"),
    ]
    assert v.bids() == []


def test_cancel_pending_stop() -> None:
    v = Venue()
    _seed_last_price(v)
    v.order(3, SELL, SL, 2, stop_price=95, clid="s")
    order = v.get(3, 3)
    assert v.cancel(3, 3) == [("Cancelled", 3, 2, 0, "USER")]
    assert v.stop_ids() == []
    assert status_of(order) == OrderStatus.CANCELLED


# ============================================================================ LIMIT_MAKER
def test_limit_maker() -> None:
    v = Venue()
    v.sell(1, 101, 1)
    assert v.order(2, BUY, LIMIT_MAKER, 1, 101, clid="x") == [("Rejected", 2, "x", "WOULD_TAKE")]
    assert v.order(2, BUY, LIMIT_MAKER, 1, 102, clid="x") == [("Rejected", 2, "x", "WOULD_TAKE")]
    assert v.order(2, BUY, LIMIT_MAKER, 1, 100, clid="x") == [
        acc(2, 2, "x", "BUY", "LIMIT_MAKER", 100, 1)
    ]
    assert v.order(3, SELL, LIMIT_MAKER, 1, 100, clid="y") == [("Rejected", 3, "y", "WOULD_TAKE")]
    assert v.bids() == [(100, 1, 1)] and v.asks() == [(101, 1, 1)]


@pytest.mark.parametrize("tif", [IOC, FOK])
def test_limit_maker_rejects_immediate_tif(tif: TimeInForce) -> None:
    v = Venue()
    assert v.order(1, BUY, LIMIT_MAKER, 1, 100, tif=tif, clid="x") == [
        ("Rejected", 1, "x", "INVALID_TIME_IN_FORCE")
    ]


# ============================================================================ icebergs
def test_iceberg_refresh_goes_to_back_of_level() -> None:
    v = Venue()
    assert v.sell(1, 100, 10, display_qty=3, clid="ice") == [
        acc(1, 1, "ice", "SELL", "LIMIT", 100, 10, display=3)
    ]
    v.sell(2, 100, 2, clid="plain")
    assert v.asks() == [(100, 5, 2)]  # L2 shows only the visible part
    assert v.buy(3, 100, 4, clid="t") == [
        acc(3, 3, "t", "BUY", "LIMIT", 100, 4),
        trade(1, 100, 3, "BUY", 1, 7, 3, 3, 1, 3),
        ("Iceberg", 1, 3, 7),
        trade(2, 100, 1, "BUY", 2, 1, 1, 3, 0, 4),
    ]
    assert v.ask_ids() == [2, 1]
    assert v.asks() == [(100, 4, 2)]
    ice = v.get(1, 1)
    assert ice is not None and (ice.visible, ice.leaves) == (3, 7)
    assert ice.status == OrderStatus.PARTIALLY_FILLED


def test_iceberg_alone_refreshes_repeatedly_and_last_slice_is_smaller() -> None:
    v = Venue()
    v.sell(1, 100, 7, display_qty=3, clid="ice")
    assert v.buy(2, 100, 7, clid="t") == [
        acc(2, 2, "t", "BUY", "LIMIT", 100, 7),
        trade(1, 100, 3, "BUY", 1, 4, 3, 2, 4, 3),
        ("Iceberg", 1, 3, 4),
        trade(2, 100, 3, "BUY", 1, 1, 6, 2, 1, 6),
        ("Iceberg", 1, 1, 1),
        trade(3, 100, 1, "BUY", 1, 0, 7, 2, 0, 7),
    ]
    assert v.asks() == []


def test_fok_counts_hidden_iceberg_qty() -> None:
    v = Venue()
    v.sell(1, 100, 10, display_qty=3)
    before = v.book_state()
    assert v.buy(2, 100, 11, tif=FOK, clid="f1") == [
        acc(2, 2, "f1", "BUY", "LIMIT", 100, 11, "FOK"),
        ("Expired", 2, 11, 0, "FOK_NOT_FILLED"),
    ]
    assert v.book_state() == before
    assert v.buy(2, 100, 8, tif=FOK, clid="f2") == [
        acc(3, 2, "f2", "BUY", "LIMIT", 100, 8, "FOK"),
        trade(1, 100, 3, "BUY", 1, 7, 3, 3, 5, 3),
        ("Iceberg", 1, 3, 7),
        trade(2, 100, 3, "BUY", 1, 4, 6, 3, 2, 6),
        ("Iceberg", 1, 3, 4),
        trade(3, 100, 2, "BUY", 1, 2, 8, 3, 0, 8),
    ]
    assert v.asks() == [(100, 1, 1)]


@pytest.mark.parametrize(
    ("kwargs", "ord_type"),
    [
        ({"qty": 5, "display_qty": 5, "price": 100}, LIMIT),
        ({"qty": 5, "display_qty": 6, "price": 100}, LIMIT),
        ({"qty": 5, "display_qty": -1, "price": 100}, LIMIT),
        ({"qty": 5, "display_qty": 2}, MARKET),
        ({"qty": 5, "display_qty": 2, "price": 100, "tif": IOC}, LIMIT),
        ({"qty": 5, "display_qty": 2, "price": 100, "tif": FOK}, LIMIT),
    ],
)
def test_invalid_display_qty(kwargs: dict[str, Any], ord_type: OrdType) -> None:
    v = Venue()
    qty = kwargs.pop("qty")
    price = kwargs.pop("price", 0)
    assert v.order(1, BUY, ord_type, qty, price, clid="x", **kwargs) == [
        ("Rejected", 1, "x", "INVALID_DISPLAY_QTY")
    ]


# ============================================================================ time in force
def test_ioc_remainder_expires() -> None:
    v = Venue()
    v.sell(1, 100, 2)
    assert v.buy(2, 100, 5, tif=IOC, clid="i") == [
        acc(2, 2, "i", "BUY", "LIMIT", 100, 5, "IOC"),
        trade(1, 100, 2, "BUY", 1, 0, 2, 2, 3, 2),
        ("Expired", 2, 3, 2, "IOC_REMAINDER"),
    ]
    assert v.buy(2, 99, 5, tif=IOC, clid="j") == [
        acc(3, 2, "j", "BUY", "LIMIT", 99, 5, "IOC"),
        ("Expired", 3, 5, 0, "IOC_REMAINDER"),
    ]
    assert v.bids() == [] and v.asks() == []


def test_fok_fills_fully_or_not_at_all() -> None:
    v = Venue()
    v.sell(1, 100, 2)
    v.sell(1, 101, 2)
    before = v.book_state()
    assert v.buy(2, 100, 3, tif=FOK, clid="f") == [
        acc(3, 2, "f", "BUY", "LIMIT", 100, 3, "FOK"),
        ("Expired", 3, 3, 0, "FOK_NOT_FILLED"),
    ]
    assert v.book_state() == before
    assert v.buy(2, 101, 4, tif=FOK, clid="g") == [
        acc(4, 2, "g", "BUY", "LIMIT", 101, 4, "FOK"),
        trade(1, 100, 2, "BUY", 1, 0, 2, 4, 2, 2),
        trade(2, 101, 2, "BUY", 2, 0, 2, 4, 0, 4),
    ]


def test_fok_with_own_order_in_the_way_fails() -> None:
    v = Venue()
    v.sell(1, 100, 2)
    v.sell(2, 100, 5)
    assert v.buy(1, 100, 3, tif=FOK, clid="f") == [
        acc(3, 1, "f", "BUY", "LIMIT", 100, 3, "FOK"),
        ("Expired", 3, 3, 0, "FOK_NOT_FILLED"),
    ]
    # EXPIRE_MAKER skips the own order and fills from the rest
    assert v.buy(1, 100, 3, tif=FOK, stp_mode=StpMode.EXPIRE_MAKER, clid="g") == [
        acc(4, 1, "g", "BUY", "LIMIT", 100, 3, "FOK", stp="EXPIRE_MAKER"),
        ("STP", "EXPIRE_MAKER", 4, 1, 100, 2, 3, 2),
        ("Expired", 1, 2, 0, "SELF_TRADE"),
        trade(1, 100, 3, "BUY", 2, 2, 3, 4, 0, 3),
    ]
    assert v.asks() == [(100, 2, 1)]


def test_gtd_expires_at_first_command_at_or_after_expire_time() -> None:
    v = Venue()
    exp = T0 + 5 * NS
    assert v.buy(1, 100, 1, tif=GTD, expire_time=exp, clid="g") == [
        acc(1, 1, "g", "BUY", "LIMIT", 100, 1, "GTD", expire=exp)
    ]
    order = v.get(1, 1)
    assert v.core.next_deadline() == exp
    assert v.tick(at=exp - 1) == []
    assert v.bids() == [(100, 1, 1)]
    assert v.tick(at=exp) == [("Expired", 1, 1, 0, "GTD_EXPIRED")]
    assert status_of(order) == OrderStatus.EXPIRED
    assert v.bids() == []
    assert v.core.next_deadline() == 0


def test_gtd_expiry_comes_before_the_command_that_passes_it() -> None:
    v = Venue()
    exp = T0 + 5 * NS
    v.sell(1, 100, 1, tif=GTD, expire_time=exp)
    assert v.buy(2, 100, 1, at=exp + 7, clid="late") == [
        ("Expired", 1, 1, 0, "GTD_EXPIRED"),
        acc(2, 2, "late", "BUY", "LIMIT", 100, 1),
    ]


def test_gtd_deadline_skips_orders_gone_before_expiry() -> None:
    v = Venue()
    v.buy(1, 100, 1, tif=GTD, expire_time=T0 + 5 * NS)
    v.buy(1, 99, 1, tif=GTD, expire_time=T0 + 9 * NS)
    assert v.core.next_deadline() == T0 + 5 * NS
    v.cancel(1, 1)
    assert v.core.next_deadline() == T0 + 9 * NS
    assert v.tick(at=T0 + 10 * NS) == [("Expired", 2, 1, 0, "GTD_EXPIRED")]
    assert v.core.next_deadline() == 0


def test_gtd_in_the_past_rejected() -> None:
    v = Venue()
    now = T0 + 1_000
    assert v.buy(1, 100, 1, tif=GTD, expire_time=now, at=now, clid="x") == [
        ("Rejected", 1, "x", "EXPIRE_TIME_IN_PAST")
    ]
    assert v.buy(1, 100, 1, tif=GTD, expire_time=now - 1, clid="y") == [
        ("Rejected", 1, "y", "EXPIRE_TIME_IN_PAST")
    ]


def test_gtd_stop_order_expires_from_stop_book() -> None:
    v = Venue()
    _seed_last_price(v)
    exp = T0 + 5 * NS
    v.order(3, SELL, SLL, 1, 89, stop_price=90, tif=GTD, expire_time=exp, clid="s")
    assert v.tick(at=exp) == [("Expired", 3, 1, 0, "GTD_EXPIRED")]
    assert v.stop_ids() == []


def test_gtd_stop_market_order_expires_from_stop_book() -> None:
    """A stop-market order keeps its time in force while it waits for its trigger."""
    v = Venue()
    _seed_last_price(v)
    exp = T0 + 5 * NS
    v.order(3, SELL, SL, 1, stop_price=90, tif=GTD, expire_time=exp, clid="s")
    assert v.stop_ids() == [3]
    assert v.core.next_deadline() == exp
    assert v.tick(at=exp) == [("Expired", 3, 1, 0, "GTD_EXPIRED")]
    assert v.stop_ids() == []


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_stop_market_order_refuses_immediate_time_in_force(tif: TimeInForce) -> None:
    v = Venue()
    _seed_last_price(v)
    assert v.order(3, SELL, SL, 1, stop_price=90, tif=tif, clid="s") == [
        ("Rejected", 3, "s", "INVALID_TIME_IN_FORCE")
    ]


def test_day_order_expires_at_session_end() -> None:
    v = Venue(session_end_s=22 * 3600)
    end = MIDNIGHT + 22 * 3600 * NS
    assert v.buy(1, 100, 1, tif=DAY, clid="d") == [
        acc(1, 1, "d", "BUY", "LIMIT", 100, 1, "DAY", expire=end)
    ]
    assert v.core.next_deadline() == end
    assert v.tick(at=end - 1) == []
    assert v.tick(at=end) == [("Expired", 1, 1, 0, "DAY_EXPIRED")]
    # entered after the session end: expires at the next day's session end
    late = end + 3600 * NS
    assert v.buy(1, 100, 1, tif=DAY, at=late, clid="d2") == [
        acc(2, 1, "d2", "BUY", "LIMIT", 100, 1, "DAY", expire=end + DAY_NS)
    ]


def test_day_order_with_midnight_session_end() -> None:
    v = Venue(session_end_s=0)
    assert v.buy(1, 100, 1, tif=DAY, clid="d") == [
        acc(1, 1, "d", "BUY", "LIMIT", 100, 1, "DAY", expire=MIDNIGHT + DAY_NS)
    ]


def test_market_order_tif_is_ioc_and_gtd_ignored() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    assert v.order(2, BUY, MARKET, 1, tif=GTD, expire_time=T0 + NS, clid="m") == [
        acc(2, 2, "m", "BUY", "MARKET", 0, 1, "IOC"),
        trade(1, 100, 1, "BUY", 1, 4, 1, 2, 0, 1),
    ]


# ============================================================================ cancel
def test_cancel_by_order_id_and_by_client_order_id() -> None:
    v = Venue()
    v.buy(1, 100, 5, clid="a")
    v.buy(1, 99, 4, clid="b")
    first = v.get(1, 1)
    assert v.cancel(1, 1) == [("Cancelled", 1, 5, 0, "USER")]
    assert status_of(first) == OrderStatus.CANCELLED
    assert v.cancel(1, clid="b") == [("Cancelled", 2, 4, 0, "USER")]
    assert v.bids() == []


def test_cancel_partially_filled() -> None:
    v = Venue()
    v.buy(1, 100, 5, clid="a")
    v.sell(2, 100, 2)
    assert v.cancel(1, 1) == [("Cancelled", 1, 3, 2, "USER")]


def test_cancel_rejections() -> None:
    v = Venue(spec(), spec(SYM2))
    v.buy(1, 100, 5, clid="a")  # 1
    v.sell(2, 100, 5, clid="f")  # 2 fills 1
    v.buy(1, 100, 5, clid="live")  # 3
    assert v.cancel(1, 999) == [("CancelRejected", 1, 999, "", "UNKNOWN_ORDER")]
    assert v.cancel(1, clid="nope") == [("CancelRejected", 1, 0, "nope", "UNKNOWN_ORDER")]
    assert v.cancel(1, 1) == [("CancelRejected", 1, 1, "", "UNKNOWN_ORDER")]  # filled
    assert v.cancel(1, clid="a") == [("CancelRejected", 1, 0, "a", "UNKNOWN_ORDER")]
    assert v.cancel(2, 3) == [("CancelRejected", 2, 3, "", "UNKNOWN_ORDER")]  # not theirs
    assert v.cancel(1, 3, symbol=SYM2) == [
        ("CancelRejected", 1, 3, "", "UNKNOWN_ORDER", f"inst={SYM2}")
    ]
    assert v.cancel(1, 3, symbol="NOPE-X") == [
        ("CancelRejected", 1, 3, "", "UNKNOWN_INSTRUMENT", "inst=NOPE-X")
    ]
    assert v.cancel(1, 3) == [("Cancelled", 3, 5, 0, "USER")]
    assert v.cancel(1, 3) == [("CancelRejected", 1, 3, "", "UNKNOWN_ORDER")]  # already gone


# ============================================================================ replace
def _two_bids(v: Venue) -> None:
    v.buy(1, 100, 5, clid="a")  # 1
    v.buy(2, 100, 5, clid="b")  # 2


def test_replace_qty_down_keeps_priority() -> None:
    v = Venue()
    _two_bids(v)
    assert v.replace(1, 1, 3, 100) == [("Replaced", 1, "a", "a", 100, 3, 0, 3, 0, True)]
    assert v.bid_ids() == [1, 2]
    assert v.bids() == [(100, 8, 2)]
    assert v.sell(3, 100, 3, clid="t") == [
        acc(3, 3, "t", "SELL", "LIMIT", 100, 3),
        trade(1, 100, 3, "SELL", 1, 0, 3, 3, 0, 3),
    ]


def test_replace_qty_up_loses_priority() -> None:
    v = Venue()
    _two_bids(v)
    assert v.replace(1, 1, 7, 100) == [("Replaced", 1, "a", "a", 100, 7, 0, 7, 0, False)]
    assert v.bid_ids() == [2, 1]
    assert v.bids() == [(100, 12, 2)]


def test_replace_price_change_loses_priority() -> None:
    v = Venue()
    _two_bids(v)
    v.replace(1, 1, 5, 99)
    assert v.replace(1, 1, 5, 100) == [("Replaced", 1, "a", "a", 100, 5, 0, 5, 0, False)]
    assert v.bid_ids() == [2, 1]


def test_replace_price_change_crosses_and_trades_as_taker() -> None:
    v = Venue()
    _two_bids(v)
    v.sell(3, 102, 2, clid="s")  # 3
    assert v.replace(1, 1, 5, 102, clid="a2") == [
        ("Replaced", 1, "a", "a2", 102, 5, 0, 5, 0, False),
        trade(1, 102, 2, "BUY", 3, 0, 2, 1, 3, 2),
    ]
    assert v.bids() == [(102, 3, 1), (100, 5, 1)]
    assert v.asks() == []
    # the new client id now names the order, the old one does not
    assert v.cancel(1, clid="a") == [("CancelRejected", 1, 0, "a", "UNKNOWN_ORDER")]
    assert v.cancel(1, clid="a2") == [("Cancelled", 1, 3, 2, "USER")]


def test_replace_partially_filled_down_to_just_above_filled() -> None:
    v = Venue()
    v.buy(1, 100, 5, clid="a")
    v.sell(2, 100, 3)
    assert v.replace(1, 1, 3, 100) == [
        ("ReplaceRejected", 1, 1, "", "", "REPLACE_QTY_NOT_ABOVE_FILLED")
    ]
    assert v.replace(1, 1, 2, 100) == [
        ("ReplaceRejected", 1, 1, "", "", "REPLACE_QTY_NOT_ABOVE_FILLED")
    ]
    assert v.replace(1, 1, 4, 100) == [("Replaced", 1, "a", "a", 100, 4, 0, 1, 3, True)]
    assert v.bids() == [(100, 1, 1)]


def test_replace_rejections() -> None:
    v = Venue()
    v.buy(1, 100, 5, clid="a")  # 1
    v.buy(1, 99, 5, clid="b")  # 2
    v.sell(2, 100, 5)  # 3 fills 1
    assert v.replace(1, 1, 5, 100) == [("ReplaceRejected", 1, 1, "", "", "UNKNOWN_ORDER")]
    assert v.replace(1, 77, 5, 100) == [("ReplaceRejected", 1, 77, "", "", "UNKNOWN_ORDER")]
    assert v.replace(1, 0, 5, 100, orig_clid="zz") == [
        ("ReplaceRejected", 1, 0, "zz", "", "UNKNOWN_ORDER")
    ]
    v.buy(1, 98, 5, clid="c")  # 4
    assert v.replace(1, 2, 5, 99, clid="c") == [
        ("ReplaceRejected", 1, 2, "", "c", "DUPLICATE_CLIENT_ORDER_ID")
    ]
    assert v.replace(1, 2, 0, 99) == [("ReplaceRejected", 1, 2, "", "", "INVALID_QUANTITY")]
    assert v.replace(1, 2, 5, 0) == [("ReplaceRejected", 1, 2, "", "", "INVALID_PRICE")]
    assert v.replace(1, 2, 5, 99, stop_price=5) == [
        ("ReplaceRejected", 1, 2, "", "", "INVALID_STOP_PRICE")
    ]
    # by the original client order id
    assert v.replace(1, 0, 4, 99, orig_clid="b") == [
        ("Replaced", 2, "b", "b", 99, 4, 0, 4, 0, True)
    ]


def test_replace_limit_maker_that_would_take_is_rejected() -> None:
    v = Venue()
    v.sell(1, 101, 1)
    v.order(2, BUY, LIMIT_MAKER, 1, 100, clid="m")
    assert v.replace(2, 2, 1, 101) == [("ReplaceRejected", 2, 2, "", "", "WOULD_TAKE")]


def test_replace_pending_stop() -> None:
    v = Venue()
    _seed_last_price(v)
    v.order(3, SELL, SLL, 4, 90, stop_price=95, clid="s")  # 3
    v.order(4, SELL, SLL, 1, 90, stop_price=94, clid="t")  # 4
    # qty down, same prices: keeps its place
    assert v.replace(3, 3, 3, 90) == [("Replaced", 3, "s", "s", 90, 3, 95, 3, 0, True)]
    # stop price change: loses it
    assert v.replace(3, 3, 3, 90, stop_price=94) == [
        ("Replaced", 3, "s", "s", 90, 3, 94, 3, 0, False)
    ]
    assert v.stop_ids() == [4, 3]
    assert status_of(v.get(3, 3)) == OrderStatus.PENDING_TRIGGER
    assert v.replace(3, 3, 3, 90, stop_price=100) == [
        ("ReplaceRejected", 3, 3, "", "", "WOULD_TRIGGER_IMMEDIATELY")
    ]
    # the new stop price triggers it
    v.buy(5, 94, 1)  # 5
    v.buy(5, 90, 10)  # 6
    assert v.sell(6, 94, 1, clid="x") == [
        acc(7, 6, "x", "SELL", "LIMIT", 94, 1),
        trade(2, 94, 1, "SELL", 5, 0, 1, 7, 0, 1),
        ("Triggered", 4, 94, 94),
        trade(3, 90, 1, "SELL", 6, 9, 1, 4, 0, 1),
        ("Triggered", 3, 94, 94),
        trade(4, 90, 3, "SELL", 6, 6, 4, 3, 0, 3),
    ]


def test_replace_pending_stop_market_with_price_rejected() -> None:
    v = Venue()
    _seed_last_price(v)
    v.order(3, SELL, SL, 4, stop_price=95, clid="s")
    assert v.replace(3, 3, 4, 90) == [("ReplaceRejected", 3, 3, "", "", "INVALID_PRICE")]
    assert v.replace(3, 3, 4, 0, stop_price=96) == [
        ("Replaced", 3, "s", "s", 0, 4, 96, 4, 0, False)
    ]


def test_replace_iceberg_qty_down_keeps_visible_within_leaves() -> None:
    v = Venue()
    v.sell(1, 100, 10, display_qty=4, clid="ice")
    v.sell(2, 100, 1)
    assert v.replace(1, 1, 3, 100) == [("Replaced", 1, "ice", "ice", 100, 3, 0, 3, 0, True)]
    assert v.asks() == [(100, 4, 2)]
    assert v.ask_ids() == [1, 2]


# ============================================================================ mass cancel
def _mass_setup() -> Venue:
    v = Venue(spec(), spec(SYM2))
    v.buy(1, 100, 1, clid="a")  # 1
    v.sell(1, 110, 1, clid="b")  # 2
    v.buy(1, 50, 1, clid="c", symbol=SYM2)  # 3
    v.buy(2, 99, 1, clid="d", session="S1")  # 4
    v.sell(1, 60, 1, clid="e", symbol=SYM2, session="S1")  # 5
    v.order(1, BUY, SL, 1, stop_price=120, clid="f")  # 6 (pending)
    v.sell(2, 111, 1, clid="g")  # 7
    return v


def test_mass_cancel_by_session_needs_a_session() -> None:
    """An empty session would name every order entered outside a session: refused."""
    v = Venue()
    v.buy(1, 90, 1)
    assert v.mass_cancel(MassCancelScope.SESSION, session="") == [
        ("CommandRejected", "INVALID_COMMAND", "mass cancel by session needs a session")
    ]
    assert v.bid_ids() == [1]


@pytest.mark.parametrize(
    ("scope", "kwargs", "cancelled"),
    [
        (MassCancelScope.ACCOUNT, {"account": 1}, [1, 2, 3, 5, 6]),
        (MassCancelScope.ACCOUNT_INSTRUMENT, {"account": 1, "instrument": SYM}, [1, 2, 6]),
        (MassCancelScope.ACCOUNT_INSTRUMENT, {"account": 1, "instrument": SYM2}, [3, 5]),
        (MassCancelScope.SESSION, {"session": "S1"}, [4, 5]),
        (MassCancelScope.INSTRUMENT, {"instrument": SYM}, [1, 2, 4, 6, 7]),
        (MassCancelScope.ALL, {}, [1, 2, 3, 4, 5, 6, 7]),
        (MassCancelScope.ACCOUNT, {"account": 9}, []),
    ],
)
def test_mass_cancel_scopes(
    scope: MassCancelScope, kwargs: dict[str, Any], cancelled: list[int]
) -> None:
    v = _mass_setup()
    inst = {3: SYM2, 5: SYM2}
    expected: list[tuple[Any, ...]] = [
        ("Cancelled", oid, 1, 0, "MASS_CANCEL", *([f"inst={inst[oid]}"] if oid in inst else []))
        for oid in cancelled
    ]
    expected.append(
        (
            "MassCancelDone",
            scope.name,
            kwargs.get("account", 0),
            kwargs.get("instrument", ""),
            kwargs.get("session", ""),
            "r1",
            len(cancelled),
            "MASS_CANCEL",
        )
    )
    assert v.mass_cancel(scope, request_id="r1", **kwargs) == expected
    remaining = {1, 2, 3, 4, 5, 6, 7} - set(cancelled)
    live = {o.order_id for acct in (1, 2) for o in v.core.open_orders(acct)}
    assert live == remaining


def test_mass_cancel_unknown_instrument() -> None:
    v = _mass_setup()
    assert v.mass_cancel(MassCancelScope.INSTRUMENT, instrument="NOPE") == [
        ("CommandRejected", "UNKNOWN_INSTRUMENT", "NOPE")
    ]


# ============================================================================ STP
def test_stp_expire_taker_default() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    before = v.book_state()
    assert v.buy(1, 100, 3, clid="t") == [
        acc(2, 1, "t", "BUY", "LIMIT", 100, 3),
        ("STP", "EXPIRE_TAKER", 2, 1, 100, 3, 3, 5),
        ("Expired", 2, 3, 0, "SELF_TRADE"),
    ]
    assert v.book_state() == before


def test_stp_expire_taker_after_partial_fill() -> None:
    v = Venue()
    v.sell(2, 100, 1)  # 1
    v.sell(1, 100, 5)  # 2
    assert v.buy(1, 100, 3, clid="t") == [
        acc(3, 1, "t", "BUY", "LIMIT", 100, 3),
        trade(1, 100, 1, "BUY", 1, 0, 1, 3, 2, 1),
        ("STP", "EXPIRE_TAKER", 3, 2, 100, 2, 2, 5),
        ("Expired", 3, 2, 1, "SELF_TRADE"),
    ]


def test_stp_expire_maker() -> None:
    v = Venue()
    v.sell(1, 100, 5)  # 1
    v.sell(2, 100, 2)  # 2
    assert v.buy(1, 100, 3, stp_mode=StpMode.EXPIRE_MAKER, clid="t") == [
        acc(3, 1, "t", "BUY", "LIMIT", 100, 3, stp="EXPIRE_MAKER"),
        ("STP", "EXPIRE_MAKER", 3, 1, 100, 3, 3, 5),
        ("Expired", 1, 5, 0, "SELF_TRADE"),
        trade(1, 100, 2, "BUY", 2, 0, 2, 3, 1, 2),
    ]
    assert v.bids() == [(100, 1, 1)] and v.asks() == []


def test_stp_expire_both() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    assert v.buy(1, 100, 3, stp_mode=StpMode.EXPIRE_BOTH, clid="t") == [
        acc(2, 1, "t", "BUY", "LIMIT", 100, 3, stp="EXPIRE_BOTH"),
        ("STP", "EXPIRE_BOTH", 2, 1, 100, 3, 3, 5),
        ("Expired", 1, 5, 0, "SELF_TRADE"),
        ("Expired", 2, 3, 0, "SELF_TRADE"),
    ]
    assert v.bids() == [] and v.asks() == []


def test_stp_decrement_taker_smaller() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    assert v.buy(1, 100, 3, stp_mode=StpMode.DECREMENT, clid="t") == [
        acc(2, 1, "t", "BUY", "LIMIT", 100, 3, stp="DECREMENT"),
        ("STP", "DECREMENT", 2, 1, 100, 3, 0, 2),
        ("Expired", 2, 0, 0, "SELF_TRADE"),
    ]
    assert v.asks() == [(100, 2, 1)]
    maker = v.get(1, 1)
    # documented: DECREMENT takes the quantity off both orders' qty and leaves
    assert maker is not None and (maker.qty, maker.leaves, maker.cum_qty) == (2, 2, 0)


def test_stp_decrement_then_replace_cannot_give_the_quantity_back() -> None:
    v = Venue()
    v.sell(1, 100, 10, clid="m")  # 1
    v.sell(2, 100, 1, clid="other")  # 2
    assert v.buy(1, 100, 4, stp_mode=StpMode.DECREMENT, clid="t") == [
        acc(3, 1, "t", "BUY", "LIMIT", 100, 4, stp="DECREMENT"),
        ("STP", "DECREMENT", 3, 1, 100, 4, 0, 6),
        ("Expired", 3, 0, 0, "SELF_TRADE"),
    ]
    maker = v.get(1, 1)
    assert maker is not None and (maker.qty, maker.leaves) == (6, 6)
    # 5 is below what is left (6): priority kept, open quantity goes down
    assert v.replace(1, 1, 5, 100) == [("Replaced", 1, "m", "m", 100, 5, 0, 5, 0, True)]
    assert v.ask_ids() == [1, 2]
    assert v.asks() == [(100, 6, 2)]
    # 9 is above it: an increase, so the order loses its place
    assert v.replace(1, 1, 9, 100) == [("Replaced", 1, "m", "m", 100, 9, 0, 9, 0, False)]
    assert v.ask_ids() == [2, 1]


def test_stp_decrement_maker_smaller() -> None:
    v = Venue()
    v.sell(1, 100, 3)  # 1
    v.sell(2, 101, 1)  # 2
    assert v.buy(1, 101, 5, stp_mode=StpMode.DECREMENT, clid="t") == [
        acc(3, 1, "t", "BUY", "LIMIT", 101, 5, stp="DECREMENT"),
        ("STP", "DECREMENT", 3, 1, 100, 3, 2, 0),
        ("Expired", 1, 0, 0, "SELF_TRADE"),
        trade(1, 101, 1, "BUY", 2, 0, 1, 3, 1, 1),
    ]
    assert v.bids() == [(101, 1, 1)] and v.asks() == []


def test_stp_decrement_equal() -> None:
    v = Venue()
    v.sell(1, 100, 3)
    assert v.buy(1, 100, 3, stp_mode=StpMode.DECREMENT, clid="t") == [
        acc(2, 1, "t", "BUY", "LIMIT", 100, 3, stp="DECREMENT"),
        ("STP", "DECREMENT", 2, 1, 100, 3, 0, 0),
        ("Expired", 1, 0, 0, "SELF_TRADE"),
        ("Expired", 2, 0, 0, "SELF_TRADE"),
    ]
    assert v.bids() == [] and v.asks() == []


def test_stp_none_allows_self_trade() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    assert v.buy(1, 100, 3, stp_mode=StpMode.NONE, clid="t") == [
        acc(2, 1, "t", "BUY", "LIMIT", 100, 3, stp="NONE"),
        trade(1, 100, 3, "BUY", 1, 2, 3, 2, 0, 3),
    ]


def test_stp_account_default_and_venue_default() -> None:
    v = Venue(default_stp=StpMode.EXPIRE_BOTH)
    assert v.buy(1, 90, 1, clid="x") == [acc(1, 1, "x", "BUY", "LIMIT", 90, 1, stp="EXPIRE_BOTH")]
    assert v.configure(1, 1, StpMode.EXPIRE_MAKER) == [("AccountConfigured", 1, 1, "EXPIRE_MAKER")]
    v.sell(1, 100, 5)  # 2: account default EXPIRE_MAKER
    assert v.buy(1, 100, 2, clid="t") == [
        acc(3, 1, "t", "BUY", "LIMIT", 100, 2, stp="EXPIRE_MAKER"),
        ("STP", "EXPIRE_MAKER", 3, 2, 100, 2, 2, 5),
        ("Expired", 2, 5, 0, "SELF_TRADE"),
    ]
    assert v.bid_ids() == [3, 1]
    assert v.configure(1, 1, StpMode.DEFAULT) == [
        ("CommandRejected", "INVALID_STP_MODE", str(StpMode.DEFAULT))
    ]


def test_stp_owner_groups() -> None:
    v = Venue()
    assert v.configure(1, 7, StpMode.EXPIRE_TAKER) == [("AccountConfigured", 1, 7, "EXPIRE_TAKER")]
    v.configure(2, 7, StpMode.EXPIRE_TAKER)
    v.sell(1, 100, 5)  # 1
    assert v.buy(2, 100, 2, clid="t") == [
        acc(2, 2, "t", "BUY", "LIMIT", 100, 2),
        ("STP", "EXPIRE_TAKER", 2, 1, 100, 2, 2, 5),
        ("Expired", 2, 2, 0, "SELF_TRADE"),
    ]
    # an account outside the group trades
    assert v.buy(3, 100, 2, clid="u") == [
        acc(3, 3, "u", "BUY", "LIMIT", 100, 2),
        trade(1, 100, 2, "BUY", 1, 3, 2, 3, 0, 2),
    ]
    # leaving the group (owner = itself) makes it trade again
    v.configure(2, 2, StpMode.EXPIRE_TAKER)
    assert v.buy(2, 100, 1, clid="z") == [
        acc(4, 2, "z", "BUY", "LIMIT", 100, 1),
        trade(2, 100, 1, "BUY", 1, 2, 3, 4, 0, 1),
    ]


def test_stp_account_owned_by_another_account() -> None:
    v = Venue()
    v.configure(5, 3, StpMode.EXPIRE_TAKER)  # account 5 belongs to account 3's owner group
    v.sell(3, 100, 2)  # 1
    assert v.buy(5, 100, 1, clid="w") == [
        acc(2, 5, "w", "BUY", "LIMIT", 100, 1),
        ("STP", "EXPIRE_TAKER", 2, 1, 100, 1, 1, 2),
        ("Expired", 2, 1, 0, "SELF_TRADE"),
    ]
    # and the other way round: account 3 taking from account 5
    v.buy(5, 99, 1)  # 3
    assert v.sell(3, 99, 1, clid="x") == [
        acc(4, 3, "x", "SELL", "LIMIT", 99, 1),
        ("STP", "EXPIRE_TAKER", 4, 3, 99, 1, 1, 1),
        ("Expired", 4, 1, 0, "SELF_TRADE"),
    ]


def test_stp_with_iceberg_maker_decrement_refreshes() -> None:
    v = Venue()
    v.sell(1, 100, 6, display_qty=2)  # 1
    v.sell(2, 100, 5)  # 2
    assert v.buy(1, 100, 3, stp_mode=StpMode.DECREMENT, clid="t") == [
        acc(3, 1, "t", "BUY", "LIMIT", 100, 3, stp="DECREMENT"),
        ("STP", "DECREMENT", 3, 1, 100, 2, 1, 4),
        ("Iceberg", 1, 2, 4),
        trade(1, 100, 1, "BUY", 2, 4, 1, 3, 0, 1),
    ]
    assert v.ask_ids() == [2, 1]
    assert v.asks() == [(100, 6, 2)]


# ============================================================================ filters
def _filtered() -> Venue:
    return Venue(spec(min_qty=2, max_qty=100, min_notional=500, reference_price=100, band_bps=500))


@pytest.mark.parametrize(
    ("ord_type", "qty", "price", "kwargs", "reason"),
    [
        (LIMIT, 0, 100, {}, "INVALID_QUANTITY"),
        (LIMIT, -3, 100, {}, "INVALID_QUANTITY"),
        (LIMIT, 1, 100, {}, "QTY_BELOW_MIN"),
        (LIMIT, 101, 100, {}, "QTY_ABOVE_MAX"),
        (LIMIT, 4, 100, {}, "NOTIONAL_BELOW_MIN"),
        (MARKET, 4, 0, {}, "NOTIONAL_BELOW_MIN"),  # reference 100 x 4 lots
        (MARKET, 0, 0, {"quote_qty": 499}, "NOTIONAL_BELOW_MIN"),
        (MARKET, 5, 0, {"quote_qty": 600}, "INVALID_QUANTITY"),
        (LIMIT, 0, 100, {"quote_qty": 600}, "INVALID_QUANTITY"),
        (MARKET, 0, 0, {"quote_qty": -600}, "INVALID_QUANTITY"),
        (LIMIT, 5, 0, {}, "INVALID_PRICE"),
        (LIMIT, 5, -100, {}, "INVALID_PRICE"),
        (LIMIT, 6, 106, {}, "PRICE_OUTSIDE_BAND"),
        (LIMIT, 6, 94, {}, "PRICE_OUTSIDE_BAND"),
        (LIMIT_MAKER, 6, 106, {}, "PRICE_OUTSIDE_BAND"),
        (SL, 6, 0, {}, "INVALID_STOP_PRICE"),
        (SLL, 6, 100, {"stop_price": -1}, "INVALID_STOP_PRICE"),
        (TP, 6, 0, {"stop_price": 0}, "INVALID_STOP_PRICE"),
    ],
)
def test_filters_reject(
    ord_type: OrdType, qty: int, price: int, kwargs: dict[str, Any], reason: str
) -> None:
    v = _filtered()
    assert v.order(1, BUY, ord_type, qty, price, clid="x", **kwargs) == [
        ("Rejected", 1, "x", reason)
    ]
    assert v.core.resting_count() == 0


def test_filters_accept_at_the_limits() -> None:
    v = _filtered()
    assert v.buy(1, 100, 5, clid="a") == [acc(1, 1, "a", "BUY", "LIMIT", 100, 5)]
    assert v.buy(1, 95, 100, clid="b") == [acc(2, 1, "b", "BUY", "LIMIT", 95, 100)]
    assert v.sell(1, 105, 100, clid="c") == [acc(3, 1, "c", "SELL", "LIMIT", 105, 100)]


def test_unknown_instrument_rejected() -> None:
    v = Venue()
    assert v.order(1, BUY, LIMIT, 1, 100, clid="x", symbol="NOPE") == [
        ("Rejected", 1, "x", "UNKNOWN_INSTRUMENT", "inst=NOPE")
    ]


def test_reference_follows_last_trade() -> None:
    v = Venue(spec(reference_price=100, band_bps=500))
    v.sell(1, 104, 1)
    v.buy(2, 104, 1)  # last 104: band [99, 109]
    assert v.buy(3, 98, 1, clid="lo") == [("Rejected", 3, "lo", "PRICE_OUTSIDE_BAND")]
    assert v.buy(3, 99, 1, clid="lo2") == [acc(3, 3, "lo2", "BUY", "LIMIT", 99, 1)]
    assert v.sell(3, 110, 1, clid="hi") == [("Rejected", 3, "hi", "PRICE_OUTSIDE_BAND")]
    assert v.sell(3, 109, 1, clid="hi2") == [acc(4, 3, "hi2", "SELL", "LIMIT", 109, 1)]


def test_set_reference_price_sets_band_before_trades() -> None:
    v = Venue(spec(band_bps=1_000))
    assert v.buy(1, 1_000, 1, clid="any") == [acc(1, 1, "any", "BUY", "LIMIT", 1_000, 1)]
    assert v.set_reference(100) == [("RefPrice", SYM, 100)]
    assert v.buy(1, 111, 1, clid="x") == [("Rejected", 1, "x", "PRICE_OUTSIDE_BAND")]
    assert v.buy(1, 110, 1, clid="y") == [acc(2, 1, "y", "BUY", "LIMIT", 110, 1)]
    assert v.set_reference(0) == [("CommandRejected", "INVALID_PRICE", "0")]
    assert v.set_reference(100, symbol="NOPE") == [
        ("CommandRejected", "UNKNOWN_INSTRUMENT", "NOPE")
    ]


def test_set_reference_price_after_a_trade_moves_the_band() -> None:
    """SetReferencePrice is "the price band's reference until the next trade sets it"
    (engine/commands.py): an operator can re-centre the band after trading has started."""
    v = Venue(spec(band_bps=1_000))
    v.sell(1, 100, 1)
    v.buy(2, 100, 1)  # last 100: band [90, 110]
    assert v.set_reference(200) == [("RefPrice", SYM, 200)]
    assert v.buy(3, 111, 1, clid="lo") == [("Rejected", 3, "lo", "PRICE_OUTSIDE_BAND")]
    assert v.buy(3, 200, 1, clid="x") == [acc(3, 3, "x", "BUY", "LIMIT", 200, 1)]
    assert v.sell(4, 200, 1, clid="y") == [
        acc(4, 4, "y", "SELL", "LIMIT", 200, 1),
        trade(2, 200, 1, "SELL", 3, 0, 1, 4, 0, 1),
    ]
    # ... and the next trade sets it again: band around 200 is [180, 220]
    assert v.buy(3, 221, 1, clid="z") == [("Rejected", 3, "z", "PRICE_OUTSIDE_BAND")]
    v.set_reference(100)
    v.sell(5, 95, 1)  # 5
    v.buy(6, 95, 1)  # 6: trades at 95, band [86, 104]
    assert v.buy(3, 105, 1, clid="w") == [("Rejected", 3, "w", "PRICE_OUTSIDE_BAND")]


# ============================================================================ instrument states
def test_cancel_only_state() -> None:
    v = Venue()
    v.buy(1, 100, 5, clid="a")
    assert v.set_state(InstrumentState.CANCEL_ONLY) == [("State", SYM, "CANCEL_ONLY")]
    assert v.buy(1, 100, 1, clid="x") == [("Rejected", 1, "x", "INSTRUMENT_NOT_OPEN")]
    assert v.replace(1, 1, 4, 100) == [("ReplaceRejected", 1, 1, "", "", "INSTRUMENT_NOT_OPEN")]
    assert v.cancel(1, 1) == [("Cancelled", 1, 5, 0, "USER")]
    assert v.set_state(InstrumentState.OPEN) == [("State", SYM, "OPEN")]
    assert v.buy(1, 100, 1, clid="y") == [acc(2, 1, "y", "BUY", "LIMIT", 100, 1)]


def test_halted_state() -> None:
    v = Venue(spec(), spec(SYM2))
    v.buy(1, 100, 5, clid="a")  # 1
    v.buy(1, 100, 5, clid="b", symbol=SYM2)  # 2
    v.buy(2, 99, 5, clid="c")  # 3
    assert v.set_state(InstrumentState.HALTED) == [("State", SYM, "HALTED")]
    assert v.buy(1, 100, 1, clid="x") == [("Rejected", 1, "x", "INSTRUMENT_HALTED")]
    assert v.replace(1, 1, 4, 100) == [("ReplaceRejected", 1, 1, "", "", "INSTRUMENT_HALTED")]
    assert v.cancel(1, 1) == [("CancelRejected", 1, 1, "", "INSTRUMENT_HALTED")]
    # a participant's mass cancel skips the halted instrument
    assert v.mass_cancel(MassCancelScope.ACCOUNT, account=1) == [
        ("Cancelled", 2, 5, 0, "MASS_CANCEL", f"inst={SYM2}"),
        ("MassCancelDone", "ACCOUNT", 1, "", "", "", 1, "MASS_CANCEL"),
    ]
    assert [o.order_id for o in v.core.open_orders(1)] == [1]
    # an operator's mass cancel applies
    assert v.mass_cancel(
        MassCancelScope.INSTRUMENT, instrument=SYM, reason=CancelReason.OPERATOR
    ) == [
        ("Cancelled", 1, 5, 0, "OPERATOR"),
        ("Cancelled", 3, 5, 0, "OPERATOR"),
        ("MassCancelDone", "INSTRUMENT", 0, SYM, "", "", 2, "OPERATOR"),
    ]


def test_halted_instrument_still_expires_gtd() -> None:
    v = Venue()
    v.buy(1, 100, 5, tif=GTD, expire_time=T0 + NS)
    v.set_state(InstrumentState.HALTED)
    assert v.tick(at=T0 + NS) == [("Expired", 1, 5, 0, "GTD_EXPIRED")]


def test_initial_state_and_unknown_instrument_state_change() -> None:
    v = Venue(spec(state=InstrumentState.HALTED))
    assert v.buy(1, 100, 1, clid="x") == [("Rejected", 1, "x", "INSTRUMENT_HALTED")]
    assert v.set_state(InstrumentState.OPEN, symbol="NOPE") == [
        ("CommandRejected", "UNKNOWN_INSTRUMENT", "NOPE")
    ]


def test_kill_switch() -> None:
    v = Venue(spec(), spec(SYM2))
    v.buy(1, 100, 5, clid="a")  # 1
    v.order(2, SELL, SL, 1, stop_price=50, clid="b", symbol=SYM2)  # 2 (pending)
    v.sell(3, 110, 5, clid="c", symbol=SYM2)  # 3
    assert v.kill(True, cancel_orders=False) == [("KillSwitch", True)]
    assert v.buy(1, 100, 1, clid="x") == [("Rejected", 1, "x", "KILL_SWITCH")]
    assert v.buy(1, 100, 1, clid="y", symbol=SYM2) == [
        ("Rejected", 1, "y", "KILL_SWITCH", f"inst={SYM2}")
    ]
    assert v.replace(1, 1, 4, 100) == [("ReplaceRejected", 1, 1, "", "", "KILL_SWITCH")]
    assert v.core.resting_count() == 3
    assert v.kill(True, cancel_orders=True) == [
        ("KillSwitch", True),
        ("Cancelled", 1, 5, 0, "KILL_SWITCH"),
        ("Cancelled", 2, 1, 0, "KILL_SWITCH", f"inst={SYM2}"),
        ("Cancelled", 3, 5, 0, "KILL_SWITCH", f"inst={SYM2}"),
        ("MassCancelDone", "ALL", 0, "", "", "", 3, "KILL_SWITCH"),
    ]
    assert v.core.resting_count() == 0
    assert v.kill(False) == [("KillSwitch", False)]
    assert v.buy(1, 100, 1, clid="z") == [acc(4, 1, "z", "BUY", "LIMIT", 100, 1)]


def test_cancel_works_under_kill_switch() -> None:
    v = Venue()
    v.buy(1, 100, 5, clid="a")
    v.kill(True, cancel_orders=False)
    assert v.cancel(1, 1) == [("Cancelled", 1, 5, 0, "USER")]


# ============================================================================ client order ids
def test_duplicate_client_order_id() -> None:
    v = Venue()
    assert v.buy(1, 100, 5, clid="x") == [acc(1, 1, "x", "BUY", "LIMIT", 100, 5)]
    assert v.buy(1, 99, 5, clid="x") == [("Rejected", 1, "x", "DUPLICATE_CLIENT_ORDER_ID")]
    # another account may use the same id
    assert v.sell(2, 101, 5, clid="x") == [acc(2, 2, "x", "SELL", "LIMIT", 101, 5)]
    # a pending stop holds its id too
    v.sell(9, 100, 1)  # 3 fills part of 1: last 100
    v.order(1, BUY, SL, 1, stop_price=120, clid="st")  # 4
    assert v.buy(1, 90, 1, clid="st") == [("Rejected", 1, "st", "DUPLICATE_CLIENT_ORDER_ID")]
    # reusable once the first order is done (cancelled)
    v.cancel(1, clid="x")
    assert v.buy(1, 98, 1, clid="x") == [acc(5, 1, "x", "BUY", "LIMIT", 98, 1)]
    # ... or filled
    v.sell(3, 98, 1)  # 6 fills 5
    assert v.get(1, 5) is None
    assert v.buy(1, 97, 1, clid="x") == [acc(7, 1, "x", "BUY", "LIMIT", 97, 1)]
    # ... or expired (IOC)
    assert v.buy(1, 91, 1, tif=IOC, clid="i") == [
        acc(8, 1, "i", "BUY", "LIMIT", 91, 1, "IOC"),
        ("Expired", 8, 1, 0, "IOC_REMAINDER"),
    ]
    assert v.buy(1, 91, 1, clid="i") == [acc(9, 1, "i", "BUY", "LIMIT", 91, 1)]


# ============================================================================ order status
def test_order_status_lifecycle() -> None:
    v = Venue()
    v.sell(1, 100, 5)
    o = v.get(1, 1)
    assert status_of(o) == OrderStatus.NEW
    v.buy(2, 100, 2)
    assert status_of(o) == OrderStatus.PARTIALLY_FILLED
    assert o is not None and (o.leaves, o.cum_qty) == (3, 2)
    v.buy(2, 100, 3)
    assert status_of(o) == OrderStatus.FILLED
    assert o.leaves == 0 and o.cum_qty == 5
    v.sell(1, 100, 5)  # 4
    c = v.get(1, 4)
    v.cancel(1, 4)
    assert status_of(c) == OrderStatus.CANCELLED
    v.sell(1, 100, 5, tif=GTD, expire_time=T0 + NS)  # 5
    e = v.get(1, 5)
    v.tick(at=T0 + NS)
    assert status_of(e) == OrderStatus.EXPIRED


# ============================================================================ sequencing
def test_sequence_and_time_are_enforced() -> None:
    core = Core([spec()])
    with pytest.raises(SequenceError):
        core.apply(Tick(seq=2, ts=T0))
    core.apply(Tick(seq=1, ts=T0))
    with pytest.raises(SequenceError):
        core.apply(Tick(seq=2, ts=T0 - 1))
    assert core.apply(Tick(seq=2, ts=T0)) == []
    assert core.apply(NewOrder(1, SYM, "a", BUY, LIMIT, 1, 100, seq=3, ts=T0)) != []


def test_unknown_command_rejected() -> None:
    core = Core([spec()])

    class Deposit:
        seq = 1
        ts = T0

    events = core.apply(Deposit())
    assert [(type(e).__name__, e.reason.name, e.detail) for e in events] == [  # type: ignore[union-attr]
        ("CommandRejected", "INVALID_COMMAND", "Deposit")
    ]


# ============================================================================ units
def test_unit_conversion() -> None:
    s = spec_from_decimals(
        "BTC-USD", "BTC", "USD", "0.01", "0.001", "0.001", "100", "10", 500, "30000.00"
    )
    assert s.tick_size == Decimal("0.01") and s.lot_size == Decimal("0.001")
    assert (s.min_qty, s.max_qty, s.min_notional) == (1, 100_000, 1_000_000)
    assert s.reference_price == 3_000_000
    assert s.price_to_ticks("100.01") == 10_001
    assert s.price_to_ticks(Decimal("0.05")) == 5
    assert s.price_to_ticks("100") == 10_000
    assert s.qty_to_lots("1.5") == 1_500
    assert s.qty_to_lots("0.001") == 1
    assert s.ticks_to_price(10_001) == Decimal("100.01")
    assert s.lots_to_qty(1_500) == Decimal("1.5")
    assert s.units_to_notional(100) == Decimal("0.001")


@pytest.mark.parametrize("bad", ["100.015", "0.001", "abc", "", "NaN", "Infinity", "-inf", "1e"])
def test_price_to_ticks_rejects(bad: str) -> None:
    s = spec()
    with pytest.raises(UnitError):
        s.price_to_ticks(bad)


@pytest.mark.parametrize("bad", ["0.0015", "1.0001", "x1", "sNaN", Decimal("Infinity")])
def test_qty_to_lots_rejects(bad: str | Decimal) -> None:
    s = spec()
    with pytest.raises(UnitError):
        s.qty_to_lots(bad)


def test_unit_conversion_rejects_non_numbers() -> None:
    s = spec()
    with pytest.raises(UnitError):
        s.price_to_ticks(None)  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        spec_from_decimals("X-Y", "X", "Y", "0.01", "0.001", "0.0015", "1", "0", 100)
    with pytest.raises(ValueError):
        spec_from_decimals("X-Y", "X", "Y", "0", "0.001", "0.001", "1", "0", 100)


# ============================================================================ snapshots
def _busy_venue() -> Venue:
    v = Venue(spec(), spec(SYM2), default_stp=StpMode.EXPIRE_MAKER, session_end_s=22 * 3600)
    v.configure(2, 1, StpMode.DECREMENT)
    v.sell(1, 100, 1)
    v.buy(3, 100, 1)  # last 100
    v.sell(1, 102, 10, display_qty=3, clid="ice")  # 3
    v.buy(4, 102, 4)  # 4: takes 3 + 1 of the iceberg
    v.sell(4, 103, 2, tif=GTD, expire_time=T0 + 9 * NS)  # 5
    v.buy(5, 98, 2, tif=DAY, session="S1")  # 6
    v.order(5, SELL, SL, 1, stop_price=97, clid="s1")  # 7
    v.order(6, SELL, SLL, 1, 90, stop_price=97, clid="s2")  # 8
    v.order(5, BUY, TP, 1, stop_price=97, clid="s3")  # 9
    v.buy(7, 50, 1, symbol=SYM2)  # 10
    v.set_state(InstrumentState.CANCEL_ONLY, symbol=SYM2)
    v.set_reference(99)
    return v


def test_snapshot_restore_gives_same_state_and_same_future() -> None:
    v = _busy_venue()
    assert v.stop_ids() == [7, 8, 9]
    twin = Venue(spec(), spec(SYM2), default_stp=StpMode.EXPIRE_MAKER, session_end_s=22 * 3600)
    twin.core.restore(v.core.snapshot())
    twin.seq, twin.ts, twin.known, twin._clid = v.seq, v.ts, dict(v.known), v._clid
    assert twin.core.state_hash() == v.core.state_hash()
    assert twin.core.snapshot() == v.core.snapshot()
    assert twin.core.next_deadline() == v.core.next_deadline() == T0 + 9 * NS
    assert twin.ask_ids() == v.ask_ids() == [3, 5]
    assert twin.asks() == v.asks() == [(102, 2, 1), (103, 2, 1)]
    assert twin.stop_ids() == [7, 8, 9]
    script: list[Callable[[Venue], list[tuple[Any, ...]]]] = [
        lambda x: x.buy(2, 102, 1),  # DECREMENT against account 1's iceberg (same owner)
        lambda x: x.buy(9, 97, 1),
        lambda x: x.sell(8, 97, 3, clid="drop"),  # sweeps 98 and 97: triggers the stops
        lambda x: x.buy(1, 50, 1, symbol=SYM2),  # CANCEL_ONLY
        lambda x: x.tick(at=T0 + 9 * NS),  # the GTD order expires
        lambda x: x.mass_cancel(MassCancelScope.ALL, reason=CancelReason.OPERATOR),
    ]
    for step in script:
        assert step(twin) == step(v)
        assert twin.core.state_hash() == v.core.state_hash()


def test_restore_needs_an_empty_core_and_a_known_snapshot() -> None:
    v = _busy_venue()
    data = v.core.snapshot()
    with pytest.raises(ValueError):
        v.core.restore(data)
    fresh = Core([spec()])
    with pytest.raises(ValueError):
        fresh.restore(data)  # holds an instrument this core does not have
    import marshal

    with pytest.raises(ValueError):
        Core([spec(), spec(SYM2)]).restore(marshal.dumps((99,)))


def test_state_hash_changes_with_state() -> None:
    v = Venue()
    empty = v.core.state_hash()
    v.buy(1, 100, 1)
    one = v.core.state_hash()
    assert one != empty
    v.cancel(1, 1)
    assert v.core.state_hash() not in (empty, one)  # sequence and ids moved on
