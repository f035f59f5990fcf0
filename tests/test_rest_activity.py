"""The REST door's per-account read model stays bounded whatever the flow, and prunes in
amortized constant time per order (a market maker's account with many remembered orders never
costs a scan per order)."""

from __future__ import annotations

from engine.events import OrderAccepted, OrderCancelled
from engine.types import CancelReason, OrderStatus, OrdType, Side, StpMode, TimeInForce
from gateway.rest.activity import Activity


def _accepted(order_id: int) -> OrderAccepted:
    return OrderAccepted(
        order_id, 7, "X-Y", f"c{order_id}", Side.BUY, OrdType.LIMIT, TimeInForce.GTC,
        100, 5, 0, 0, 0, 0, StpMode.NONE, "", OrderStatus.NEW,
    )  # fmt: skip


def test_order_lists_and_times_stay_bounded() -> None:
    activity = Activity(keep_done=100, keep_trades=10)
    for n in range(1, 20_001):
        cancel = OrderCancelled(n, 7, "X-Y", f"c{n}", 5, 0, CancelReason.USER)
        activity.apply(n, n * 1_000_000, [_accepted(n), cancel])
    assert len(activity.orders.done) == 100
    assert len(activity.by_account[7]) <= 2 * 100 + 1  # twice what is remembered, at most
    assert len(activity.times) <= 2 * 100 + 1024 + 1
    assert [v.order_id for v in activity.account_orders(7, "X-Y")][-1] == 20_000


def test_pruning_is_amortized_when_every_order_is_remembered() -> None:
    activity = Activity(keep_done=1_000_000, keep_trades=10)
    scans = 0
    forget = activity._forget

    def counting(account: int, ids: object) -> None:
        nonlocal scans
        scans += 1
        forget(account, ids)  # type: ignore[arg-type]

    activity._forget = counting  # type: ignore[method-assign]
    for n in range(1, 20_001):
        activity.apply(n, n * 1_000_000, [_accepted(n)])
    assert len(activity.by_account[7]) == 20_000
    assert scans <= 12, scans  # doubling: log2(20000 / 40) + 1
