"""The detectors over streams a real core produced: each labelled abuse is found, and the
clean flow that looks like it (market makers, self-trade prevention, honest takes) is not."""

from __future__ import annotations

import random
from pathlib import Path

from detect_flows import ASSETS, PRICE, SPECS, USD, Flow, new_core, params
from helpers import SYM

from engine.commands import MassCancel, NewOrder, SetKillSwitch
from engine.events import SelfTradePrevented, Trade
from engine.types import MassCancelScope, OrdType, Side, StpMode, TimeInForce
from surveillance.alerts import AlertType
from surveillance.detect import LatestSink, Surveillance, batch
from surveillance.detect.params import AmlParams

# -- wash trades --------------------------------------------------------------------------------


def test_an_account_trading_with_itself_is_a_wash_trade() -> None:
    flow = Flow()
    flow.configure(7, 7, StpMode.NONE)
    flow.sell(7, PRICE, 5)
    flow.buy(7, PRICE, 5)
    flow.sell(7, PRICE, 3)
    flow.buy(7, PRICE, 3)
    [alert] = flow.alerts(AlertType.WASH_TRADE)
    assert alert.accounts == (7,)
    assert alert.evidence["kind"] == "self"
    assert [t["qty"] for t in alert.evidence["trades"]] == ["0.005", "0.003"]
    assert flow.sink.counts[alert.key] == 2  # one behaviour, updated
    assert alert.key.startswith("WASH_TRADE:BTC-USD:7-7:")


def test_accounts_of_one_owner_trading_with_each_other_is_a_wash_trade() -> None:
    flow = Flow()
    flow.configure(1, 9)
    flow.configure(2, 9)
    flow.sell(1, PRICE, 5)
    flow.buy(2, PRICE, 5)
    [alert] = flow.alerts(AlertType.WASH_TRADE)
    assert alert.accounts == (1, 2) and alert.evidence["kind"] == "owner"
    assert "owner 9" in alert.summary


def test_trades_prevented_by_self_trade_prevention_raise_nothing() -> None:
    flow = Flow()
    flow.configure(1, 9, StpMode.EXPIRE_TAKER)
    flow.configure(2, 9, StpMode.EXPIRE_TAKER)
    prevented = 0
    for _ in range(5):
        flow.sell(1, PRICE, 5)
        flow.buy(2, PRICE, 5)
        prevented += sum(isinstance(e, SelfTradePrevented) for e in flow.stream[-1][2])
    assert prevented == 5
    assert not any(isinstance(e, Trade) for _, _, events in flow.stream for e in events)
    assert flow.alerts() == []


def test_unrelated_accounts_trading_back_and_forth_is_collusion() -> None:
    flow = Flow(params(collusion_min_each_way=3))
    for _ in range(3):
        flow.sell(3, PRICE, 8)
        flow.buy(4, PRICE, 8)
        flow.sell(4, PRICE, 8)
        assert flow.alerts() == [] or flow.alerts()[0].evidence["kind"] == "collusion"
        flow.buy(3, PRICE, 8)
    [alert] = flow.alerts(AlertType.WASH_TRADE)
    assert alert.accounts == (3, 4) and alert.evidence["kind"] == "collusion"
    assert len(alert.evidence["trades"]) == 6


def test_one_way_trading_and_back_and_forth_outside_the_window_are_not_collusion() -> None:
    flow = Flow(params(collusion_min_each_way=3, wash_window_s=60))
    for _ in range(6):  # 4 keeps buying from 3: a real position change
        flow.sell(3, PRICE, 8)
        flow.buy(4, PRICE, 8)
    for _ in range(3):  # back and forth, a minute and more apart
        flow.wait(61_000)
        flow.sell(5, PRICE, 8)
        flow.buy(6, PRICE, 8)
        flow.wait(61_000)
        flow.sell(6, PRICE, 8)
        flow.buy(5, PRICE, 8)
    assert flow.alerts() == []


def test_back_and_forth_leaving_a_position_is_not_collusion() -> None:
    flow = Flow(params(collusion_min_each_way=3, collusion_max_net_pct=10))
    for _ in range(3):
        flow.sell(3, PRICE, 10)
        flow.buy(4, PRICE, 10)
        flow.sell(4, PRICE, 2)
        flow.buy(3, PRICE, 2)
    assert flow.alerts() == []  # 4 keeps 24 of 36: net 67 % of the gross


# -- spoofing and layering ----------------------------------------------------------------------


def test_a_large_bid_cancelled_after_selling_is_spoofing() -> None:
    flow = Flow()
    flow.background()  # typical size 10; best bid 99.90 (account 50)
    big = flow.buy(7, PRICE - 12, 200)  # near the touch, 20 times the typical size
    flow.sell(7, PRICE - 10, 10)  # sells into account 50's bid
    assert flow.alerts() == []
    flow.cancel(7, big, after_ms=500)
    [alert] = flow.alerts()
    assert alert.type is AlertType.SPOOFING
    assert alert.accounts == (7,)
    assert alert.evidence["side"] == "BUY"
    assert [o["orderId"] for o in alert.evidence["orders"]] == [big]
    assert [t["side"] for t in alert.evidence["trades"]] == ["SELL"]
    assert alert.evidence["medianOrderQty"] == "0.010"


def test_several_levels_cancelled_after_selling_is_layering() -> None:
    flow = Flow()
    flow.background()
    layers = [flow.buy(8, PRICE - 11 - i, 30) for i in range(4)]  # each 3x the typical size
    flow.sell(8, PRICE - 10, 10)
    for order_id in layers:
        flow.cancel(8, order_id, after_ms=100)
    [alert] = flow.alerts()
    assert alert.type is AlertType.LAYERING
    assert sorted(o["orderId"] for o in alert.evidence["orders"]) == layers
    assert all(o["cancelledTime"] is not None for o in alert.evidence["orders"])


def test_accounts_of_one_owner_spoofing_together_are_found() -> None:
    flow = Flow()
    flow.configure(11, 90, StpMode.EXPIRE_TAKER)
    flow.configure(12, 90, StpMode.EXPIRE_TAKER)
    flow.background()
    big = flow.sell(11, PRICE + 12, 200)
    flow.buy(12, PRICE + 10, 10)  # the other account of the owner buys
    flow.cancel(11, big, after_ms=2_000)
    [alert] = flow.alerts(AlertType.SPOOFING)
    assert alert.accounts == (11, 12) and ":90:" in alert.key


def test_a_large_order_cancelled_without_executing_on_the_other_side_is_not_spoofing() -> None:
    flow = Flow()
    flow.background()
    big = flow.buy(7, PRICE - 12, 200)
    flow.sell(60, PRICE - 10, 10)  # someone else trades meanwhile
    flow.cancel(7, big, after_ms=500)
    assert flow.alerts() == []


def test_cancelling_long_after_the_execution_is_not_spoofing() -> None:
    flow = Flow(params(spoof_cancel_ms=10_000))
    flow.background()
    big = flow.buy(7, PRICE - 12, 200)
    flow.sell(7, PRICE - 10, 10)
    flow.cancel(7, big, after_ms=10_001)
    assert flow.alerts() == []


def test_a_normal_order_resting_while_taking_honestly_is_not_spoofing() -> None:
    flow = Flow()
    flow.background()
    bid = flow.buy(7, PRICE - 12, 10)  # the typical size
    flow.sell(7, PRICE - 10, 10)
    flow.cancel(7, bid, after_ms=200)
    assert flow.alerts() == []


def test_market_makers_quoting_levels_on_both_sides_raise_nothing() -> None:
    """Two market makers quote five levels of 20 lots each side, reprice every round, are hit
    by takers and cancel and requote at once: no spoofing, no layering, ratio under the max."""
    flow = Flow(params(otr_min_messages=200, otr_max_number=100))
    flow.background()
    quotes: dict[int, list[tuple[int, Side]]] = {20: [], 21: []}
    mid = PRICE
    trades = 0
    for round_ in range(30):
        for mm, offset in ((20, 0), (21, 1)):
            for order_id, _ in quotes[mm]:
                flow.cancel(mm, order_id)
            quotes[mm] = []
            for level in range(5):
                bid = flow.buy(mm, mid - 2 - level - offset, 20)
                ask = flow.sell(mm, mid + 2 + level + offset, 20)
                quotes[mm] += [(bid, Side.BUY), (ask, Side.SELL)]
        for mm in (20, 21):  # reprice the outer levels in place
            for order_id, side in quotes[mm][-2:]:
                step = -1 if side is Side.BUY else 1
                live = flow.core.order(mm, order_id)
                if live is not None:
                    flow.replace(mm, order_id, 20, live.price + step)
        taker_side = Side.BUY if round_ % 2 else Side.SELL
        price = mid + 4 if taker_side is Side.BUY else mid - 4
        before = len(flow.stream)
        flow.order(70 + round_ % 3, taker_side, price, 45)
        trades += sum(isinstance(e, Trade) for _, _, evs in flow.stream[before:] for e in evs)
        mid += 1 if round_ % 4 < 2 else -1
    assert trades >= 90
    assert flow.alerts() == []
    assert len(flow.stream) > 1300


def _maker_filled_on_one_side(flow: Flow) -> tuple[list[int], list[int]]:
    """Account 20 quotes three levels a side, its bids large against its asks; a buyer lifts
    two of its asks (it sells passively): the bids are a large side seen with an execution on
    the other side, the shape spoofing has."""
    flow.background()  # typical size 10; best bid 99.90, best ask 100.10
    bids = [flow.buy(20, PRICE - 5 - i, 40) for i in range(3)]
    asks = [flow.sell(20, PRICE + 5 + i, qty) for i, qty in enumerate((20, 10, 10))]
    flow.buy(70, PRICE + 6, 30)  # takes 20 at 100.05 and 10 at 100.06
    return bids, asks


def test_a_market_maker_requoting_as_the_price_moves_after_a_passive_fill_raises_nothing() -> None:
    """The maker's fair price falls 3 ticks: it replaces its bids down (away from the touch,
    all 120 lots) and then its asks down, re-placing the two that were filled: the whole quote
    followed the market. Neither that nor the next moves (up, sizes changed) is a withdrawal."""
    flow = Flow()
    bids, asks = _maker_filled_on_one_side(flow)
    assert ("BTC-USD", 20, Side.BUY) in flow.surveillance.spoofing.episodes
    for i, order_id in enumerate(bids):
        flow.replace(20, order_id, 40, PRICE - 8 - i)
    flow.replace(20, asks[2], 10, PRICE + 4)
    asks = [flow.sell(20, PRICE + 2, 20), flow.sell(20, PRICE + 3, 10), asks[2]]
    flow.wait(300)
    for i, order_id in enumerate(bids):  # the price falls again: bids first, smaller
        flow.replace(20, order_id, 15, PRICE - 12 - i)
    for i, order_id in enumerate(asks):
        flow.replace(20, order_id, 15, PRICE - 2 + i)
    flow.wait(2_000)
    flow.buy(53, PRICE - 40, 1)  # a later command: nothing held is left to judge
    assert flow.alerts() == []
    assert not flow.surveillance.spoofing.episodes[("BTC-USD", 20, Side.BUY)].pending


def test_a_market_maker_cancelling_a_level_and_quoting_it_again_raises_nothing() -> None:
    flow = Flow()
    bids, _ = _maker_filled_on_one_side(flow)
    for order_id in bids:  # its quotes go, and come back at once a tick lower
        flow.cancel(20, order_id)
    for i in range(3):
        flow.buy(20, PRICE - 6 - i, 35)
    flow.wait(2_000)
    flow.buy(53, PRICE - 40, 1)
    assert flow.alerts() == []


def test_an_owner_quoting_both_sides_that_withdraws_the_large_one_is_found_a_moment_later() -> None:
    """The same maker's bids pulled far from the touch (cancelled, or moved 60 ticks down)
    with its asks left where they were, or moved a token tick: not a requote, layering once
    ``spoof_requote_ms`` is over."""
    for pull in ("cancel", "move", "move with a token move of the ask"):
        flow = Flow(params(spoof_requote_ms=1_000))
        bids, asks = _maker_filled_on_one_side(flow)
        for i, order_id in enumerate(bids):
            if pull == "cancel":
                flow.cancel(20, order_id)
            else:
                flow.replace(20, order_id, 40, PRICE - 65 - i)
        if pull.endswith("ask"):
            flow.replace(20, asks[2], 10, PRICE + 6)
        assert flow.alerts() == []  # held: the other side might still follow
        flow.wait(500)
        flow.buy(53, PRICE - 40, 1)
        assert flow.alerts() == []
        flow.wait(600)
        flow.buy(53, PRICE - 40, 1)
        [alert] = flow.alerts()
        assert alert.type is AlertType.LAYERING and alert.accounts == (20,), pull
        assert sorted(o["orderId"] for o in alert.evidence["orders"] if o["cancelledTime"]) == bids


# -- order-to-trade ratio -----------------------------------------------------------------------


def test_orders_and_cancels_without_trades_breach_the_number_ratio() -> None:
    flow = Flow(params(otr_min_messages=40, otr_max_number=20))
    for _ in range(30):
        order_id = flow.buy(30, PRICE - 100, 1)
        flow.cancel(30, order_id)
    [alert] = flow.alerts(AlertType.OTR_BREACH)
    assert alert.accounts == (30,) and alert.evidence["scope"] == "account"
    assert alert.evidence["messages"] == 40 and alert.evidence["trades"] == 0
    assert alert.evidence["numberRatio"] == "40.00"
    assert flow.sink.counts[alert.key] == 1  # judged at 40 messages; next at 80


def test_a_ratio_under_the_maximum_or_below_the_minimum_of_messages_is_quiet() -> None:
    flow = Flow(params(otr_min_messages=40, otr_max_number=20))
    for i in range(30):  # 60 messages, 3 trades: 20, not over
        order_id = flow.buy(30, PRICE - 100, 1)
        flow.cancel(30, order_id)
        if i % 10 == 0:
            flow.sell(31, PRICE - 100, 1)
            flow.buy(30, PRICE - 100, 1)
    quiet = Flow(params(otr_min_messages=100, otr_max_number=20))
    for _ in range(30):  # a ratio of 60 but only 60 messages
        quiet.cancel(30, quiet.buy(30, PRICE - 100, 1))
    assert flow.alerts() == [] and quiet.alerts() == []


def test_the_volume_method_and_the_owner_group_breach_too() -> None:
    flow = Flow(params(otr_min_messages=10, otr_max_number=1000, otr_max_volume=100))
    flow.configure(31, 99, StpMode.EXPIRE_TAKER)
    flow.configure(32, 99, StpMode.EXPIRE_TAKER)
    flow.sell(60, PRICE, 1)
    flow.buy(31, PRICE, 1)  # one lot traded
    for i in range(10):  # then orders of 100 lots each, cancelled
        account = 31 if i % 2 else 32
        flow.cancel(account, flow.buy(account, PRICE - 100, 100))
    alerts = {(a.evidence["scope"], a.evidence["id"]): a for a in flow.alerts()}
    assert set(alerts) == {("account", 31), ("account", 32), ("owner", 99)}
    group = alerts["owner", 99]
    assert group.accounts == (31, 32) and group.type is AlertType.OTR_BREACH
    assert group.evidence["volumeRatio"] == "1001.00"  # (1 + 10 x 100) / 1
    assert group.evidence["numberRatio"] == "20.00"  # under its maximum: the volume method


# -- money flows --------------------------------------------------------------------------------


def aml(**changes: object) -> AmlParams:
    base = {
        "velocity_limit": {"USD": 1_000_000 * USD},
        "structuring_limit": {"USD": 10_000 * USD},
    }
    return AmlParams(**{**base, **changes})  # type: ignore[arg-type]


def test_money_moving_fast_through_an_account_is_velocity() -> None:
    flow = Flow(aml=aml(), money=True)
    flow.deposit(40, "USD", 600_000 * USD)
    flow.withdraw(40, "USD", 300_000 * USD, after_ms=3_600_000)
    assert flow.alerts() == []
    flow.deposit(40, "USD", 200_000 * USD, after_ms=3_600_000)
    [alert] = flow.alerts(AlertType.AML_VELOCITY)
    assert alert.accounts == (40,) and alert.symbol == ""
    assert [f["amount"] for f in alert.evidence["flows"]] == ["600000", "300000", "200000"]


def test_velocity_counts_only_the_window() -> None:
    flow = Flow(aml=aml(window_s=3600), money=True)
    for _ in range(5):
        flow.deposit(40, "USD", 400_000 * USD, after_ms=3_600_001)
    assert flow.alerts() == []


def test_amounts_just_under_the_limit_are_structuring() -> None:
    flow = Flow(aml=aml(), money=True)
    for amount in (9_500, 9_900, 9_001):
        flow.deposit(41, "USD", amount * USD, after_ms=600_000)
    [alert] = flow.alerts(AlertType.AML_STRUCTURING)
    assert [f["amount"] for f in alert.evidence["flows"]] == ["9500", "9900", "9001"]


def test_amounts_far_under_or_over_the_limit_are_not_structuring() -> None:
    flow = Flow(aml=aml(), money=True)
    for amount in (5_000, 8_999, 10_000, 12_000, 9_500, 9_600):
        flow.deposit(41, "USD", amount * USD, after_ms=600_000)
    assert flow.alerts() == []


def test_a_deposit_withdrawn_without_trading_is_in_and_out() -> None:
    flow = Flow(aml=aml(), money=True)
    flow.deposit(42, "USD", 50_000 * USD)
    flow.withdraw(42, "USD", 49_000 * USD, after_ms=7_200_000)
    [alert] = flow.alerts(AlertType.AML_IN_OUT)
    assert alert.accounts == (42,) and alert.evidence["traded"] == "0"


def test_a_deposit_traded_before_withdrawing_is_not_in_and_out() -> None:
    flow = Flow(aml=aml(), money=True)
    flow.fund(60)
    flow.deposit(42, "USD", 50_000 * USD)
    for _ in range(6):  # buys 0.060 BTC at 100.00 and sells it again: 12 USD each way...
        flow.sell(60, PRICE, 60)
        flow.buy(42, PRICE, 60)
        flow.buy(60, PRICE, 60)
        flow.sell(42, PRICE, 60)
    assert flow.alerts(AlertType.AML_IN_OUT) == []
    flow.withdraw(42, "USD", 49_000 * USD)
    assert flow.alerts(AlertType.AML_IN_OUT) != []  # ...far under 10 % of 50000
    again = Flow(aml=aml(), money=True)
    again.fund(60)
    again.deposit(42, "USD", 50_000 * USD)
    again.sell(60, PRICE, 60_000)  # 60 BTC at 100.00: 6000 USD, 12 % of the deposit
    again.buy(42, PRICE, 60_000)
    again.withdraw(42, "USD", 44_000 * USD)
    assert again.alerts(AlertType.AML_IN_OUT) == []


# -- determinism --------------------------------------------------------------------------------


def test_the_same_stream_raises_the_same_alerts() -> None:
    flow = Flow()
    flow.configure(7, 7, StpMode.NONE)
    flow.background()
    big = flow.buy(7, PRICE - 12, 200)
    flow.sell(7, PRICE - 10, 10)
    flow.cancel(7, big)
    flow.sell(7, PRICE, 5)
    flow.buy(7, PRICE, 5)
    other = Flow()
    for seq, ts, events in flow.stream:
        other.surveillance.on_events(seq, ts, events)
    assert [a.to_json() for a in flow.every.alerts] == [a.to_json() for a in other.every.alerts]
    assert {a.type for a in flow.every.alerts} == {AlertType.SPOOFING, AlertType.WASH_TRADE}


def test_the_book_the_detectors_follow_is_the_cores() -> None:
    """The open quantity per price the detectors keep from the events alone (depth near the
    touch is read from it) equals the core's own book after a busy flow."""
    flow = Flow()
    flow.background()
    flow.configure(20, 20, StpMode.EXPIRE_TAKER)
    for round_ in range(40):
        ids = [flow.buy(20, PRICE - 3 - level, 7) for level in range(3)]
        ids += [flow.sell(20, PRICE + 3 + level, 7) for level in range(3)]
        flow.replace(20, ids[0], 9, PRICE - 2)
        side = Side.BUY if round_ % 2 else Side.SELL
        flow.order(70, side, PRICE + 5 if side is Side.BUY else PRICE - 5, 11)
        for order_id in ids[1::2]:
            flow.cancel(20, order_id)
    state = flow.surveillance.state
    market = flow.core.markets["BTC-USD"]
    for side, book in ((Side.BUY, market.bids), (Side.SELL, market.asks)):
        core = {price: qty for price, qty, *_ in book.depth(0)}
        assert len(core) >= 20
        assert state.levels[("BTC-USD", side)] == core
        assert state.prices[("BTC-USD", side)] == sorted(core)
        for (_, owner, order_side), group in state.by_owner.items():
            if order_side is side:
                mine = sum(o.leaves for o in group.values())
                assert state.owner_qty[("BTC-USD", owner, side)] == mine
        assert set(state.owner_qty) == set(state.by_owner)


def test_what_left_its_window_is_forgotten_at_the_next_day() -> None:
    flow = Flow(params(collusion_min_each_way=3))
    flow.sell(3, PRICE, 8)
    flow.buy(4, PRICE, 8)
    wash = flow.surveillance.detectors[1]
    assert set(wash.pairs) == {("BTC-USD", 3, 4)}
    flow.wait(2 * 86_400_000)
    flow.sell(5, PRICE, 8)
    flow.buy(6, PRICE, 8)
    assert set(wash.pairs) == {("BTC-USD", 5, 6)}
    assert set(wash.volumes) == {("BTC-USD", 5), ("BTC-USD", 6)}


def test_an_iceberg_counts_for_what_it_shows() -> None:
    flow = Flow()
    flow.background()
    big = flow.buy(7, PRICE - 12, 200, display=10)  # shows the typical size
    flow.sell(7, PRICE - 10, 10)
    flow.cancel(7, big, after_ms=500)
    assert flow.alerts() == []


def test_cancellations_by_the_venue_are_not_the_owners() -> None:
    flow = Flow(params(otr_min_messages=40, otr_max_number=20))
    flow.background()
    big = flow.buy(7, PRICE - 12, 200)
    flow.sell(7, PRICE - 10, 10)
    for _ in range(30):
        flow.buy(30, PRICE - 100, 1)
    flow.send(SetKillSwitch(True, True))  # cancels every order: 30's and the large bid
    assert flow.core.order(7, big) is None
    assert flow.alerts() == []  # no spoofing; 30 sent 30 messages, under the minimum
    flow.send(SetKillSwitch(False, False))
    for _ in range(10):
        flow.buy(30, PRICE - 100, 1)
    flow.send(MassCancel(MassCancelScope.ACCOUNT, account=30))  # asked for: 10 messages
    [alert] = flow.alerts()
    assert alert.type is AlertType.OTR_BREACH and alert.evidence["messages"] == 40


def test_a_run_from_part_way_starts_from_the_owners_and_orders_there(tmp_path: Path) -> None:
    flow = Flow()
    flow.configure(1, 9)
    flow.configure(2, 9)
    flow.background()
    big = flow.buy(7, PRICE - 12, 200)
    start = flow.seq + 1
    flow.sell(7, PRICE - 10, 10)
    flow.cancel(7, big)
    flow.sell(1, PRICE, 5)
    flow.buy(2, PRICE, 5)
    flow.write_journal(tmp_path)
    sink = LatestSink()
    again = Surveillance(flow.surveillance.state.config, SPECS, sink, ASSETS)
    count = batch.run(tmp_path, new_core, again, start)
    assert count == flow.seq - start + 1
    assert [a.type for a in sink.latest()] == [AlertType.SPOOFING, AlertType.WASH_TRADE]
    assert sink.latest()[1].evidence["kind"] == "owner"
    assert [a.to_json() for a in sink.latest()] == [a.to_json() for a in flow.sink.latest()]
    blank = LatestSink()  # without the state at the start: neither is seen
    cold = Surveillance(flow.surveillance.state.config, SPECS, blank, ASSETS)
    for seq, ts, events in flow.stream[start - 1 :]:
        cold.on_events(seq, ts, events)
    assert blank.latest() == []


def test_a_large_bid_moved_away_or_shrunk_after_selling_is_spoofing() -> None:
    for new_qty, new_price in ((200, PRICE - 60), (10, PRICE - 12)):
        flow = Flow()
        flow.background()
        big = flow.buy(7, PRICE - 12, 200)
        flow.sell(7, PRICE - 10, 10)
        flow.replace(7, big, new_qty, new_price)
        [alert] = flow.alerts()
        assert alert.type is AlertType.SPOOFING, (new_qty, new_price)
    flow = Flow()  # moved closer to the touch and kept whole: still meant to be seen
    flow.background()
    big = flow.buy(7, PRICE - 12, 200)
    flow.sell(7, PRICE - 10, 10)
    flow.replace(7, big, 200, PRICE - 11)
    assert flow.alerts() == []


def test_a_wash_alert_lists_the_latest_trades_and_counts_them_all() -> None:
    flow = Flow()
    flow.configure(7, 7, StpMode.NONE)
    for _ in range(60):
        flow.sell(7, PRICE, 1)
        flow.buy(7, PRICE, 1)
    [alert] = flow.alerts()
    assert alert.evidence["count"] == 60 and alert.evidence["volume"] == "0.060"
    trades = alert.evidence["trades"]
    assert len(trades) == 50 and trades[-1]["seq"] == flow.seq == alert.last_seq
    assert alert.first_seq == 3  # the first self-trade, though no longer listed


def test_an_account_moving_to_another_owner_takes_its_orders_along() -> None:
    flow = Flow()
    flow.background()
    ids = [flow.buy(20, PRICE - 15 - i, 7) for i in range(3)]
    flow.configure(20, 90, StpMode.EXPIRE_TAKER)
    state = flow.surveillance.state
    assert set(state.by_owner[("BTC-USD", 90, Side.BUY)]) == set(ids)
    assert ("BTC-USD", 20, Side.BUY) not in state.by_owner
    assert state.owner_qty[("BTC-USD", 90, Side.BUY)] == 21
    core = {price: qty for price, qty, *_ in flow.core.markets["BTC-USD"].bids.depth(0)}
    assert state.levels[("BTC-USD", Side.BUY)] == core


def test_an_owners_own_account_counts_in_its_group() -> None:
    flow = Flow(params(otr_min_messages=20, otr_max_number=5))
    flow.configure(31, 99, StpMode.EXPIRE_TAKER)
    for account in (31, 99) * 5:
        flow.cancel(account, flow.buy(account, PRICE - 100, 1))
    [alert] = flow.alerts()
    assert alert.evidence["scope"] == "owner" and alert.accounts == (31, 99)


def test_the_book_followed_from_random_flow_stays_the_cores() -> None:
    """Seeded random flow (limit, IOC, market and stop-limit orders, replaces, cancels, mass
    cancels, owners changing, self-trade prevention): after every command the open quantity
    per price the detectors keep equals the core's book."""
    rng = random.Random(7)
    flow = Flow()
    state = flow.surveillance.state
    market = flow.core.markets["BTC-USD"]
    accounts = [1, 2, 3, 4, 5, 6]
    for step in range(1500):
        roll = rng.random()
        account = rng.choice(accounts)
        side = rng.choice((Side.BUY, Side.SELL))
        live = flow.core.open_orders(account)
        if roll < 0.45:
            price = PRICE + rng.randint(-20, 20)
            tif = TimeInForce.IOC if rng.random() < 0.1 else TimeInForce.GTC
            flow.order(account, side, price, rng.randint(1, 30), tif=tif)
        elif roll < 0.5:
            flow.clid += 1
            flow.send(NewOrder(account, SYM, f"m{flow.clid}", side, OrdType.MARKET, qty=5))
        elif roll < 0.55:
            flow.clid += 1
            stop = PRICE + rng.randint(-10, 10)
            cmd = NewOrder(account, SYM, f"s{flow.clid}", side, OrdType.STOP_LOSS_LIMIT, qty=4)
            cmd.price, cmd.stop_price = stop, stop
            flow.send(cmd)
        elif roll < 0.75 and live:
            order = rng.choice(live)
            flow.replace(
                account, order.order_id, rng.randint(1, 30), order.price + rng.randint(-3, 3)
            )
        elif roll < 0.93 and live:
            flow.cancel(account, rng.choice(live).order_id)
        elif roll < 0.96:
            flow.send(MassCancel(MassCancelScope.ACCOUNT, account=account))
        else:
            flow.configure(account, rng.choice((account, 90, 91)), rng.choice(list(StpMode)[1:]))
        for book_side, book in ((Side.BUY, market.bids), (Side.SELL, market.asks)):
            core = {price: qty for price, qty, *_ in book.depth(0)}
            assert state.levels.get(("BTC-USD", book_side), {}) == core, step
        for key, group in state.by_owner.items():
            assert state.owner_qty[key] == sum(o.leaves for o in group.values()), step
    assert sum(isinstance(e, Trade) for _, _, evs in flow.stream for e in evs) > 300


def test_the_simulators_clean_flow_raises_no_spoofing_on_its_market_makers() -> None:
    """``venue simulate``'s own agents (two makers quoting three levels a side over FIX and
    replacing as the fair price moves, 17 traders and a passive one over REST), driven on a
    simulated clock for 15 minutes (about 60,000 orders): nothing raised on a maker, and at
    most one false alert of any kind per 10,000 orders."""
    from bench.surveillance_flow import FlowSettings, SimFlow

    flow = SimFlow(FlowSettings(seconds=900, seed=11))
    sink = LatestSink()
    config = flow.config
    watch = Surveillance(config.surveillance, config.instruments, sink, config.assets)
    flow.market.listeners.append(watch.on_events)
    flow.run()
    makers = {7801, 7802}
    assert flow.market.orders > 50_000 and flow.tally.fills["maker"] > 10_000
    on_makers = [a for a in sink.latest() if set(a.accounts) & makers]
    assert [
        a.summary for a in on_makers if a.type in (AlertType.SPOOFING, AlertType.LAYERING)
    ] == []
    assert len(sink.latest()) * 10_000 <= flow.market.orders
