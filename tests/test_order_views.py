"""The doors' shared order view (``gateway.edge.orders``) fed a stream of durable events: exact
filled quantity, average price, quote quantity and fees, whatever the prices and fee assets."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from engine.events import (
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    Trade,
    TradeSettled,
)
from engine.instrument import InstrumentSpec
from engine.types import CancelReason, OrderStatus, OrdType, Side, StpMode, TimeInForce
from gateway.edge.orders import (
    EXPIRY_REASONS,
    OrderViews,
    avg_price,
    fee_texts,
    quote_qty,
)
from gateway.edge.requests import InstrumentUnits
from gateway.fix.mapping import CANCEL_REASONS

SYM = "BTC-USDT"
SPEC = InstrumentSpec(SYM, "BTC", "USDT", Decimal("0.01"), Decimal("0.0001"), 1, 10**9, 0, 1000)
UNITS = InstrumentUnits(SPEC)
ASSETS = {"BTC": 8, "USDT": 6}
ME, OTHER = 1, 2


def _accepted(order_id: int, side: Side, price: int, qty: int) -> OrderAccepted:
    return OrderAccepted(
        order_id,
        ME,
        SYM,
        f"c{order_id}",
        side,
        OrdType.LIMIT,
        TimeInForce.GTC,
        price,
        qty,
        0,
        0,
        0,
        0,
        StpMode.NONE,
        "S",
        OrderStatus.NEW,
    )


def _trade(
    trade_id: int, price: int, qty: int, *, taker: tuple[int, int, int], maker: tuple[int, int, int]
) -> Trade:
    """``taker`` and ``maker``: (order id, cum qty, leaves) after the trade."""
    return Trade(
        trade_id,
        SYM,
        price,
        qty,
        Side.BUY,
        maker[0],
        OTHER if maker[0] >= 100 else ME,
        "",
        maker[2],
        maker[1],
        taker[0],
        OTHER if taker[0] >= 100 else ME,
        "",
        taker[2],
        taker[1],
    )


def _settled(t: Trade, buyer_fee: tuple[str, int], seller_fee: tuple[str, int]) -> TradeSettled:
    return TradeSettled(
        t.trade_id,
        SYM,
        t.price,
        t.qty,
        ME,
        OTHER,
        False,
        "BTC",
        "USDT",
        t.qty * 10_000,
        t.price * t.qty,
        buyer_fee[0],
        buyer_fee[1],
        seller_fee[0],
        seller_fee[1],
    )


def test_partial_fills_a_replace_and_a_cancel_give_exact_numbers() -> None:
    views = OrderViews()
    # a buy of 1 BTC at 100.00 takes two asks (as taker, fee in BTC), is replaced to 0.9 at
    # 100.10, fills once more as maker (a rebate in USDT) and is cancelled
    views.apply(1, 10, [_accepted(10, Side.BUY, 10_000, 10_000)])
    t1 = _trade(1, 9_950, 3_000, taker=(10, 3_000, 7_000), maker=(100, 3_000, 0))
    t2 = _trade(2, 9_980, 2_000, taker=(10, 5_000, 5_000), maker=(101, 2_000, 0))
    views.apply(
        2,
        20,
        [
            t1,
            t2,
            _settled(t1, ("BTC", 30_000), ("USDT", 29_850)),
            _settled(t2, ("BTC", 20_000), ("USDT", 19_960)),
        ],
    )
    view = views.get(10)
    assert view is not None and view.status is OrderStatus.PARTIALLY_FILLED
    assert (view.cum_qty, view.leaves) == (5_000, 5_000)
    assert views.partials() == {10: (5_000, 9_950 * 3_000 + 9_980 * 2_000)}
    views.apply(
        3, 30, [OrderReplaced(10, ME, SYM, "c10", "c10b", 10_010, 9_000, 0, 4_000, 5_000, False)]
    )
    assert (view.qty, view.leaves, view.price, view.client_order_id) == (
        9_000,
        4_000,
        10_010,
        "c10b",
    )
    t3 = _trade(3, 10_010, 1_500, taker=(102, 1_500, 0), maker=(10, 6_500, 2_500))
    views.apply(4, 40, [t3, _settled(t3, ("USDT", -1_502), ("USDT", 15_015))])
    views.apply(5, 50, [OrderCancelled(10, ME, SYM, "c10b", 2_500, 6_500, CancelReason.USER)])

    done = views.get(10)
    assert done is view and 10 not in views.open and views.partials() == {}
    assert done.status is OrderStatus.CANCELLED
    assert (view.cum_qty, view.leaves, view.qty) == (6_500, 0, 9_000)
    notional = 9_950 * 3_000 + 9_980 * 2_000 + 10_010 * 1_500
    assert view.notional == notional
    # 64.825 USDT for 0.65 BTC: 99.730769230769... quantized to the tick's 2 decimals + 8
    assert quote_qty(view, UNITS) == "64.825000"
    exact = Fraction(notional, 6_500) * Fraction(1, 100)
    assert avg_price(view, UNITS) == "99.7307692308"
    assert abs(Fraction(Decimal(avg_price(view, UNITS))) - exact) <= Fraction(1, 2 * 10**10)
    assert view.fees == {"BTC": 50_000, "USDT": -1_502}
    assert fee_texts(view, ASSETS) == {"BTC": "0.00050000", "USDT": "-0.001502"}


def test_an_average_that_divides_is_given_in_ticks() -> None:
    views = OrderViews()
    views.apply(1, 10, [_accepted(11, Side.SELL, 10_000, 2_000)])
    assert avg_price(views.open[11], UNITS) == "0"
    assert quote_qty(views.open[11], UNITS) == "0.000000"
    t1 = _trade(1, 10_000, 1_000, taker=(100, 1_000, 0), maker=(11, 1_000, 1_000))
    t2 = _trade(2, 10_002, 1_000, taker=(101, 1_000, 0), maker=(11, 2_000, 0))
    views.apply(2, 20, [t1, t2])  # no settlement: a matching-only venue has no fees
    view = views.get(11)
    assert view is not None and view.status is OrderStatus.FILLED and view.fees is None
    assert avg_price(view, UNITS) == "100.01"
    assert quote_qty(view, UNITS) == "20.002000"
    assert fee_texts(view, ASSETS) == {}


def test_done_orders_are_kept_up_to_the_bound_oldest_dropped_first() -> None:
    views = OrderViews(keep_done=2)
    for order_id in (1, 2, 3):
        views.apply(order_id, 0, [_accepted(order_id, Side.BUY, 10_000, 100)])
    for order_id in (2, 1, 3):
        views.apply(
            10 + order_id,
            0,
            [OrderExpired(order_id, ME, SYM, "", 100, 0, CancelReason.GTD_EXPIRED)],
        )
    assert list(views.done) == [1, 3] and views.open == {}
    assert views.get(2) is None and views.get(3) is not None
    assert views.get(3).status is OrderStatus.EXPIRED  # type: ignore[union-attr]
    none_kept = OrderViews(keep_done=0)
    none_kept.apply(1, 0, [_accepted(1, Side.BUY, 10_000, 100)])
    none_kept.apply(2, 0, [OrderCancelled(1, ME, SYM, "", 100, 0, CancelReason.USER)])
    assert none_kept.get(1) is None


def test_partials_put_back_the_notional_only_where_the_fills_are_unchanged() -> None:
    views = OrderViews()
    views.apply(
        1, 0, [_accepted(1, Side.BUY, 10_000, 1_000), _accepted(2, Side.BUY, 10_000, 1_000)]
    )
    views.open[1].cum_qty = 300
    restored = views.restore_partials({1: (300, 2_990_000), 2: (100, 990_000), 3: (1, 1)})
    assert restored == 1 and views.open[1].notional == 2_990_000
    assert views.partials() == {1: (300, 2_990_000)}


def test_the_status_of_a_done_order_agrees_with_the_fix_exec_type() -> None:
    for reason in CancelReason:
        assert (reason in EXPIRY_REASONS) == (CANCEL_REASONS[reason] == "C"), reason
