"""Property-based tests of the risk stage: random interleavings of orders of every type, fills,
replaces, cancels, self-trade prevention, deposits, withdrawals, freezes and fee changes.

After every command the core's invariants (``Core.check_invariants``, the risk stage's
included) must hold: no total or available balance below zero, ``locked`` equal to the holds of
open orders (each exactly what the order could still spend) plus pending withdrawals, every
asset summing to zero over all accounts including the venue's. And a read model that starts
from nothing and applies only the ``BalanceChanged`` events holds exactly the stage's balances,
the venue's accounts included. At the end a snapshot restored into a fresh core gives the same
state hash, and replaying the same commands from scratch gives the same balances."""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearing.fees import parse_fees
from clearing.risk import RiskEngine
from engine.commands import (
    AdjustBalance,
    CancelOrder,
    ConfigureAccount,
    ConfirmWithdrawal,
    Deposit,
    NewOrder,
    ReleaseWithdrawal,
    ReplaceOrder,
    SetAccountState,
    SetFeeSchedule,
    Withdraw,
)
from engine.core import Core
from engine.events import BalanceChanged, book_changes
from engine.instrument import spec_from_decimals
from engine.types import AccountState, OrdType, Side, StpMode, TimeInForce

ASSETS = {"BTC": 8, "USDT": 8, "ETH": 8}
SPECS = [
    spec_from_decimals(
        "BTC-USDT", "BTC", "USDT", "0.01", "0.001", "0.001", "100", "0", 2000, "100"
    ),
    spec_from_decimals("ETH-BTC", "ETH", "BTC", "0.0001", "0.01", "0.01", "100", "0", 2000, "0.05"),
]
ACCOUNTS = [1, 2, 3, 4]
DAY = 86_400 * 10**9
T0 = 19_675 * DAY


def fee_spec(charge_in: str) -> str:
    tiers = [
        {"min_volume": "0", "maker": "0.0013", "taker": "0.0027"},
        {"min_volume": "50", "maker": "0.0005", "taker": "0.0011"},
    ]
    return parse_fees(
        {
            "charge_in": charge_in,
            "reference_prices": {"BTC": "100"},
            "schedules": {
                "default": {"tiers": tiers},
                "mm": {
                    "rebates": True,
                    "tiers": [{"min_volume": "0", "maker": "-0.0002", "taker": "0.0009"}],
                },
            },
        },
        "fees",
    ).to_spec()


ORDER_TYPES = [
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.LIMIT,
    OrdType.MARKET,
    OrdType.LIMIT_MAKER,
    OrdType.STOP_LOSS,
    OrdType.STOP_LOSS_LIMIT,
    OrdType.TAKE_PROFIT,
    OrdType.TAKE_PROFIT_LIMIT,
]


def random_actions(rng: random.Random, count: int) -> list[tuple[Any, ...]]:
    """A flow weighted towards orders that trade, with money moving and accounts changing state
    in between. A seeded generator gives flows long enough to interleave everything; the seed
    (from hypothesis) reproduces a failure."""
    actions: list[tuple[Any, ...]] = []
    tifs = [TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]
    stps = [StpMode.DEFAULT, StpMode.NONE, StpMode.DECREMENT, StpMode.EXPIRE_BOTH,
            StpMode.EXPIRE_MAKER]  # fmt: skip
    for _ in range(count):
        roll = rng.random()
        if roll < 0.62:
            actions.append(
                (
                    "order",
                    rng.choice(ACCOUNTS),
                    rng.choice([0, 0, 1]),
                    rng.choice([Side.BUY, Side.SELL]),
                    rng.choice(ORDER_TYPES),
                    rng.randint(1, 40),
                    rng.randint(-12, 12),
                    rng.choice(tifs),
                    rng.choice(stps),
                    rng.random() < 0.5,
                )
            )
        elif roll < 0.70:
            actions.append(("cancel", rng.randint(0, 50)))
        elif roll < 0.78:
            actions.append(("replace", rng.randint(0, 50), rng.randint(1, 40), rng.randint(-8, 8)))
        elif roll < 0.83:
            actions.append(("deposit", rng.choice(ACCOUNTS), rng.choice(list(ASSETS)),
                            rng.randint(1, 10**9)))  # fmt: skip
        elif roll < 0.88:
            actions.append(("withdraw", rng.choice(ACCOUNTS), rng.choice(list(ASSETS)),
                            rng.randint(1, 10**11)))  # fmt: skip
        elif roll < 0.92:
            actions.append(("end_withdrawal", rng.randint(0, 20), rng.random() < 0.7))
        elif roll < 0.94:
            actions.append(("adjust", rng.choice(ACCOUNTS), rng.randint(-(10**8), 10**8)))
        elif roll < 0.97:
            state = rng.choice([AccountState.ACTIVE, AccountState.ACTIVE, AccountState.FROZEN])
            actions.append(("state", rng.choice(ACCOUNTS), state))
        elif roll < 0.99:
            actions.append(("schedule", rng.choice(ACCOUNTS), rng.choice(["", "mm"])))
        else:
            actions.append(("day",))
    return actions


class Runner:
    def __init__(self, charge_in: str) -> None:
        self.risk = RiskEngine(SPECS, ASSETS)
        self.core = Core(SPECS, risk=self.risk)
        self.seq = 0
        self.ts = T0
        self.commands: list[Any] = []
        self.next_wid = 1
        #: (kind, account, asset) -> (total, locked), from the BalanceChanged events alone
        self.model: dict[tuple[str, int, str], tuple[int, int]] = {}
        self.stops: set[int] = set()  # waiting stop orders, as ``book_changes`` follows them
        self.do(ConfigureAccount(3, 4, StpMode.EXPIRE_TAKER))  # 3 and 4 share an owner
        from engine.commands import ConfigureFees

        self.do(ConfigureFees(fee_spec(charge_in)))
        for account in ACCOUNTS:  # 1 and 2 are rich; 3 and 4 run out of money often
            scale = 1 if account <= 2 else 1000
            self.do(Deposit(account, "USDT", 10**12 // scale))
            self.do(Deposit(account, "BTC", 10**10 // scale))
            self.do(Deposit(account, "ETH", 10**11 // scale))

    def do(self, cmd: Any) -> list[Any]:
        self.seq += 1
        self.ts += 1_000_000
        cmd.seq, cmd.ts = self.seq, self.ts
        self.commands.append(cmd)
        ids = {symbol: m.update_id for symbol, m in self.core.markets.items()}
        events = self.core.apply(cmd)
        moved = {
            s: m.update_id - ids[s] for s, m in self.core.markets.items() if m.update_id != ids[s]
        }
        assert moved == book_changes(events, self.stops), f"book update ids after {cmd}"
        findings = self.core.check_invariants()  # the core's and the risk stage's
        assert not findings, f"after {cmd}: {findings}"
        self.follow_balances(cmd, events)
        return events

    def follow_balances(self, cmd: Any, events: list[Any]) -> None:
        """Apply the command's BalanceChanged events to the model: they come last, sorted, one
        per row that changed, and the model then equals the risk stage's balances."""
        changes = [e for e in events if isinstance(e, BalanceChanged)]
        assert events[len(events) - len(changes) :] == changes, f"{cmd}: not last: {events}"
        keys = [(e.account, e.kind, e.asset) for e in changes]
        assert keys == sorted(set(keys)), f"{cmd}: not sorted or repeated: {keys}"
        for e in changes:
            key = (e.kind, e.account, e.asset)
            assert self.model.get(key, (0, 0)) != (e.total, e.locked), f"{cmd}: no change {e}"
            self.model[key] = (e.total, e.locked)
        expected = {
            ("participant", account, asset): (total, locked)
            for account, assets in self.risk.balances.items()
            for asset, (total, locked) in assets.items()
            if total or locked
        }
        expected.update(
            ((kind, 0, asset), (value, 0))
            for (kind, asset), value in self.risk.venue.items()
            if value
        )
        model = {key: value for key, value in self.model.items() if value != (0, 0)}
        assert model == expected, f"after {cmd}"

    def open_orders(self) -> list[Any]:
        return [o for orders in self.core.live.values() for o in orders.values()]

    def run(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "order":
            _, account, inst, side, ord_type, qty, offset, tif, stp, by_quote = action
            spec = SPECS[inst]
            m = self.core.markets[spec.symbol]
            ref = m.last_price or spec.reference_price
            price = max(1, ref + ref * offset // 100)
            kw: dict[str, Any] = {"tif": tif, "stp_mode": stp}
            if ord_type in (OrdType.STOP_LOSS, OrdType.STOP_LOSS_LIMIT):
                kw["stop_price"] = max(1, ref + (ref * 3 // 100) * (1 if side is Side.BUY else -1))
            if ord_type in (OrdType.TAKE_PROFIT, OrdType.TAKE_PROFIT_LIMIT):
                kw["stop_price"] = max(1, ref - (ref * 3 // 100) * (1 if side is Side.BUY else -1))
            if ord_type in (OrdType.MARKET, OrdType.STOP_LOSS, OrdType.TAKE_PROFIT):
                price = 0
                if ord_type is OrdType.MARKET:
                    kw["tif"] = TimeInForce.GTC
                    if by_quote:
                        kw["quote_qty"] = qty * ref
                        qty = 0
            if ord_type is not OrdType.LIMIT and kw["tif"] is not TimeInForce.GTC:
                kw["tif"] = TimeInForce.GTC
            self.do(NewOrder(account, spec.symbol, "", side, ord_type, qty, price, **kw))
        elif kind == "cancel":
            orders = sorted(self.open_orders(), key=lambda o: o.order_id)
            if orders:
                o = orders[action[1] % len(orders)]
                self.do(CancelOrder(o.account, o.instrument, o.order_id))
        elif kind == "replace":
            orders = sorted(self.open_orders(), key=lambda o: o.order_id)
            if orders:
                o = orders[action[1] % len(orders)]
                price = max(1, o.price + o.price * action[3] // 100) if o.price else 0
                self.do(
                    ReplaceOrder(
                        o.account, o.instrument, o.order_id, "", "", o.cum_qty + action[2], price
                    )
                )
        elif kind == "deposit":
            self.do(Deposit(action[1], action[2], action[3]))
        elif kind == "withdraw":
            self.do(Withdraw(action[1], action[2], action[3], self.next_wid))
            self.next_wid += 1
        elif kind == "end_withdrawal":
            pending = sorted(self.risk.withdrawals)
            if pending:
                wid = pending[action[1] % len(pending)]
                self.do(ConfirmWithdrawal(wid) if action[2] else ReleaseWithdrawal(wid))
        elif kind == "adjust":
            self.do(AdjustBalance(action[1], "USDT", action[2] or 1))
        elif kind == "state":
            if action[2] is not AccountState.CLOSED:
                self.do(SetAccountState(action[1], action[2]))
        elif kind == "schedule":
            self.do(SetFeeSchedule(action[1], action[2]))
        elif kind == "day":
            self.ts += DAY


EXAMPLES = int(os.environ.get("VENUE_PROPERTY_EXAMPLES", "60"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(charge_in=st.sampled_from(["received", "quote"]), seed=st.integers(0, 2**32))
def test_no_order_spends_more_than_its_account_holds(charge_in: str, seed: int) -> None:
    runner = Runner(charge_in)
    for action in random_actions(random.Random(seed), 300):
        runner.run(action)
    # a snapshot restores the same state; a replay from scratch gives the same balances
    fresh_risk = RiskEngine(SPECS, ASSETS)
    fresh = Core(SPECS, risk=fresh_risk)
    fresh.restore(runner.core.snapshot())
    assert fresh.state_hash() == runner.core.state_hash()
    replay_risk = RiskEngine(SPECS, ASSETS)
    replay = Core(SPECS, risk=replay_risk)
    for cmd in runner.commands:
        replay.apply(cmd)
    assert replay.state_hash() == runner.core.state_hash()
    assert replay_risk.ledger_view() == runner.risk.ledger_view()
    assert replay.snapshot() == fresh.snapshot() == runner.core.snapshot()  # update ids too
