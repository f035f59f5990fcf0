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


def test_open_orders_and_counts_follow_the_core_under_random_flow() -> None:
    import random

    from engine.commands import CancelOrder, NewOrder
    from engine.core import Core
    from engine.instrument import spec_from_decimals
    from engine.types import StpMode as Stp

    spec = spec_from_decimals("X-Y", "X", "Y", "1", "1", "1", "1000", "0", 5000, "100")
    for seed in range(10):
        rng = random.Random(seed)
        core = Core([spec], default_stp=Stp.DECREMENT)
        activity = Activity(keep_done=50, keep_trades=10)
        activity.load(core)
        for seq in range(1, 600):
            live = [(a, o) for a, orders in core.live.items() for o in orders]
            if live and rng.random() < 0.3:
                account, order_id = rng.choice(live)
                cmd: object = CancelOrder(account, "X-Y", order_id)
            else:
                cmd = NewOrder(
                    rng.randint(1, 3),
                    "X-Y",
                    f"c{seq}",
                    rng.choice((Side.BUY, Side.SELL)),
                    OrdType.LIMIT,
                    qty=rng.randint(1, 9),
                    price=rng.randint(95, 105),
                    tif=rng.choice((TimeInForce.GTC, TimeInForce.IOC)),
                    stp_mode=rng.choice((Stp.DEFAULT, Stp.EXPIRE_TAKER, Stp.DECREMENT)),
                )
            cmd.seq, cmd.ts = seq, seq * 1000  # type: ignore[attr-defined]
            activity.apply(seq, seq * 1000, core.apply(cmd))  # type: ignore[arg-type]
            for account in (1, 2, 3):
                expected = [o.order_id for o in core.open_orders(account)]
                seen = [v.order_id for v in activity.open_orders(account, None)]
                assert seen == expected, (seed, seq, account)
                count = activity.open_count.get((account, "X-Y"), 0)
                assert count == len(expected), (seed, seq, account)
