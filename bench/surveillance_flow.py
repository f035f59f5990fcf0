"""``venue simulate``'s flow on a simulated clock, in process: the same agents (``Maker`` and
``Trader`` of ``venue.simulate``, their decisions from one seed) driving a core built as the venue
builds it, with labelled abusive episodes mixed in. Deterministic: the same seed gives the same
commands, events and alerts.

The agents talk to the core through stand-ins for their doors: ``CoreConn`` takes the FIX
messages a ``Maker`` sends (NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest) and
keeps its view of its live quotes from the events, as ``FixConn`` does from ExecutionReports;
``CoreRest`` answers a ``Trader``'s signed REST calls as the Binance door would. Each command is
stamped by the simulated clock and its events handed to the listeners (surveillance) as the venue
publishes them.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from engine.commands import (
    CancelOrder,
    ConfigureAccount,
    ConfigureFees,
    Deposit,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    Withdraw,
)
from engine.core import Core
from engine.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    ReplaceRejected,
    Trade,
)
from engine.types import MassCancelScope, OrdType, Side, StpMode, TimeInForce
from gateway.fix.codec import Value
from venue.config import DEFAULT_CONFIG_PATH, VenueConfig, load_config
from venue.runtime import make_core
from venue.simulate import FUNDS, FairPrice, Maker, Tally, Trader, Units

__all__ = ["ABUSE_KINDS", "Episode", "Market", "SimFlow"]

MS = 1_000_000
#: 2026-01-05T00:00:00Z: a run of a few hours stays in one UTC day
START_NS = 1_767_571_200_000_000_000
#: the kinds of labelled episode, and the alert each should raise
ABUSE_KINDS = {
    "spoofing": "SPOOFING",
    "layering": "LAYERING",
    "wash": "WASH_TRADE",
    "structuring": "AML_STRUCTURING",
    "in_out": "AML_IN_OUT",
    "otr": "OTR_BREACH",
}
_SIDES = {b"1": Side.BUY, b"2": Side.SELL, "BUY": Side.BUY, "SELL": Side.SELL}


class Market:
    """A core of the venue's configuration on a simulated clock (``ts``, ns). ``send`` stamps
    a command, applies it and hands its events to every listener."""

    def __init__(self, config: VenueConfig) -> None:
        self.config = config
        self.core: Core = make_core(config)
        self.seq = 0
        self.ts = START_NS
        self.listeners: list[Callable[[int, int, list[Event]], None]] = []
        self.orders = 0  # orders and replaces sent (the denominator of false alerts)
        if config.fees is not None and config.clearing:
            self.send(ConfigureFees(config.fees.to_spec()))

    def send(self, cmd: Any) -> list[Event]:
        self.seq += 1
        cmd.seq, cmd.ts = self.seq, self.ts
        events = self.core.apply(cmd)
        for listener in self.listeners:
            listener(self.seq, self.ts, events)
        return events

    def fund(self, account: int) -> None:
        for asset, amount in FUNDS.items():
            if asset in self.config.assets:
                minor = int(amount) * 10 ** self.config.assets[asset]
                self.send(Deposit(account, asset, minor, f"fund-{account}-{asset}"))

    def best(self, symbol: str) -> tuple[int, int]:
        """The best bid and ask (0 where a side is empty)."""
        book = self.core.markets[symbol]
        bids, asks = book.bids.depth(1), book.asks.depth(1)
        return (bids[0][0] if bids else 0), (asks[0][0] if asks else 0)


class CoreConn:
    """What a ``Maker`` needs of a FIX session, answered by the core at once: ``send`` turns
    its messages into commands, ``live``/``finished``/``orphans`` follow the events."""

    def __init__(self, market: Market, units: Units, account: int, tally: Tally) -> None:
        self.market = market
        self.units = units
        self.account = account
        self.sender = f"MM{account}".encode()
        self.tally = tally
        self.kind = "maker"
        self.live: dict[bytes, bytes] = {}
        self.orphans: list[bytes] = []
        self.finished: set[bytes] = set()
        self.ids: dict[bytes, int] = {}  # ClOrdID -> order id
        self.cls: dict[int, bytes] = {}  # order id -> its current ClOrdID
        self.rejects: Counter[str] = Counter()
        market.listeners.append(self._events)

    def send(self, msg_type: bytes, fields: list[tuple[int, Value]]) -> None:
        f = {tag: value for tag, value in fields}
        spec = self.units.spec
        cl = bytes(f[11]) if isinstance(f[11], bytes) else str(f[11]).encode()
        symbol = spec.symbol
        if msg_type == b"F":
            orig = bytes(f[41])  # type: ignore[arg-type]
            self.market.send(CancelOrder(self.account, symbol, self.ids.get(orig, 0)))
            return
        qty = spec.qty_to_lots(_text(f[38]))
        price = spec.price_to_ticks(_text(f[44]))
        side = _SIDES[bytes(f[54])]  # type: ignore[arg-type]
        self.market.orders += 1
        if msg_type == b"D":
            cmd: Any = NewOrder(
                self.account, symbol, cl.decode(), side, OrdType.LIMIT, qty=qty, price=price
            )
            cmd.tif = TimeInForce.GTC
        else:
            orig = bytes(f[41])  # type: ignore[arg-type]
            cmd = ReplaceOrder(
                self.account, symbol, self.ids.get(orig, 0), "", cl.decode(), qty, price
            )
        self.market.send(cmd)

    def _done(self, order_id: int) -> None:
        cl = self.cls.pop(order_id, None)
        if cl is not None:
            self.live.pop(cl, None)
            self.ids.pop(cl, None)
            self.finished.add(cl)

    def _events(self, seq: int, ts: int, events: list[Event]) -> None:
        me = self.account
        for e in events:
            if isinstance(e, Trade):
                if e.maker_account == me:
                    self.tally.fills["maker"] += 1
                    if e.maker_leaves == 0:
                        self._done(e.maker_order_id)
                if e.taker_account == me:
                    self.tally.fills["maker"] += 1
                    if e.taker_leaves == 0:
                        self._done(e.taker_order_id)
            elif getattr(e, "account", None) != me:
                continue
            elif isinstance(e, OrderAccepted):
                cl = e.client_order_id.encode()
                self.tally.acked["maker"] += 1
                self.live[cl] = str(e.order_id).encode()
                self.ids[cl] = e.order_id
                self.cls[e.order_id] = cl
            elif isinstance(e, OrderReplaced):
                old = self.cls.get(e.order_id)
                if old is not None:
                    self.live.pop(old, None)
                    self.ids.pop(old, None)
                    self.finished.add(old)
                cl = e.client_order_id.encode()
                self.tally.acked["maker"] += 1
                self.cls[e.order_id] = cl
                self.ids[cl] = e.order_id
                if e.leaves > 0:
                    self.live[cl] = str(e.order_id).encode()
                else:
                    self._done(e.order_id)
            elif isinstance(e, OrderCancelled | OrderExpired):
                self._done(e.order_id)
            elif isinstance(e, ReplaceRejected):
                self.tally.late["maker"] += 1
                self.finished.add(e.client_order_id.encode())  # answered: the level is free
                self.rejects[e.reason.name] += 1
                if self.market.core.order(me, e.order_id) is None:
                    self._done(e.order_id)
                else:
                    old = self.cls.get(e.order_id)
                    if old is not None:
                        self.orphans.append(old)


def _text(value: Value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class CoreRest:
    """What a ``Trader`` needs of the REST door: ``call`` answers its order requests from the
    core, in the Binance dialect's shapes (only what the agents read)."""

    def __init__(self, market: Market, units: Units, account: int) -> None:
        self.market = market
        self.units = units
        self.account = account

    async def call(self, method: str, path: str, **params: str) -> tuple[int, Any]:
        return self.answer(method, path, **params)

    def answer(self, method: str, path: str, **params: str) -> tuple[int, Any]:
        spec = self.units.spec
        market, me = self.market, self.account
        if method == "DELETE" and path == "/api/v3/openOrders":
            market.send(MassCancel(MassCancelScope.ACCOUNT, account=me))
            return 200, []
        if method == "DELETE":
            order_id = int(params["orderId"])
            events = market.send(CancelOrder(me, spec.symbol, order_id))
            if any(isinstance(e, OrderCancelled) for e in events):
                return 200, {"orderId": order_id, "status": "CANCELED"}
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        market.orders += 1
        side = _SIDES[params["side"]]
        qty = spec.qty_to_lots(params["quantity"])
        if params["type"] == "MARKET":
            cmd = NewOrder(me, spec.symbol, "", side, OrdType.MARKET, qty=qty)
        else:
            price = spec.price_to_ticks(params["price"])
            cmd = NewOrder(me, spec.symbol, "", side, OrdType.LIMIT, qty=qty, price=price)
            cmd.tif = TimeInForce.IOC if params.get("timeInForce") == "IOC" else TimeInForce.GTC
        events = market.send(cmd)
        accepted = [e for e in events if isinstance(e, OrderAccepted)]
        if not accepted:
            return 400, {"code": -2010, "msg": "rejected"}
        order_id = accepted[0].order_id
        fills = [e for e in events if isinstance(e, Trade) and e.taker_order_id == order_id]
        gone = any(
            isinstance(e, OrderCancelled | OrderExpired) and e.order_id == order_id for e in events
        )
        if fills and fills[-1].taker_leaves == 0:
            status = "FILLED"
        elif gone:
            status = "EXPIRED"
        else:
            status = "PARTIALLY_FILLED" if fills else "NEW"
        return 200, {"orderId": order_id, "status": status, "fills": [{} for _ in fills]}


def run_now(coro: Coroutine[Any, Any, None]) -> None:
    """Run an agent's coroutine that never waits (its door answers at once) to its end."""
    try:
        coro.send(None)
    except StopIteration:
        return
    coro.close()
    raise RuntimeError("an agent waited on something the simulated doors never give")


@dataclass(slots=True)
class Episode:
    """One labelled abusive episode: its kind, the accounts acting it out, when."""

    kind: str
    accounts: tuple[int, ...]
    first_seq: int
    last_seq: int = 0
    ts: int = 0
    #: the pattern happened as meant (the spoofer executed on the other side, the wash pair
    #: traded with each other); an episode that did not is left out of the recall
    acted: bool = True


@dataclass(slots=True)
class FlowSettings:
    symbol: str = "BTC-USDT"
    seed: int = 1
    seconds: float = 600.0  # simulated
    rate: float = 50.0  # trader orders a second
    makers: int = 2
    traders: int = 17  # enough for 50 orders a second at the simulator's 3 a trader
    passive: int = 1
    levels: int = 3
    requote_ms: int = 500
    abuses: tuple[str, ...] = ()
    abuse_every_s: float = 10.0  # one episode every this many seconds, the kinds in turn
    tally: Tally = field(default_factory=Tally)


class SimFlow:
    """Runs the flow: ``run()`` drives the clock to ``settings.seconds``, returns the labelled
    episodes; ``clean`` holds the accounts that never abused."""

    def __init__(self, settings: FlowSettings, config: VenueConfig | None = None) -> None:
        self.settings = settings
        self.config = config or load_config(DEFAULT_CONFIG_PATH)
        self.market = Market(self.config)
        specs = {spec.symbol: spec for spec in self.config.instruments}
        self.units = Units(specs[settings.symbol])
        self.rng = random.Random(settings.seed)
        self.fair = FairPrice(self.rng, self.units.spec.reference_price)
        self.tally = settings.tally
        self.clean: set[int] = set()
        self.makers: list[Maker] = []
        self.traders: list[Trader] = []
        self.episodes: list[Episode] = []
        self.next_account = 9001
        self.abuse_orders = 0  # orders of the episodes (``market.orders`` counts the clean flow)

    def setup(self) -> None:
        s, market = self.settings, self.market
        for i in range(s.makers):
            account = 7801 + i
            market.fund(account)
            conn = CoreConn(market, self.units, account, self.tally)
            self.makers.append(
                Maker(conn, self.units, random.Random(self.rng.random()), s.levels)  # type: ignore[arg-type]
            )
            self.clean.add(account)
        for i in range(s.traders + s.passive):
            account = 7001 + i
            market.fund(account)
            rest = CoreRest(market, self.units, account)
            rng = random.Random(self.rng.random())
            passive = i >= s.traders
            self.traders.append(
                Trader(f"trader{account}", rest, self.units, rng, self.tally, passive)  # type: ignore[arg-type]
            )
            self.clean.add(account)

    def run(self, until: Callable[[], bool] | None = None) -> list[Episode]:
        """Drive the flow for ``settings.seconds`` of simulated time (or until ``until()``)."""
        s, market, rng = self.settings, self.market, self.rng
        if not self.makers and not self.traders:
            self.setup()
        start = market.ts
        end = start + int(s.seconds * 1e9)
        requote = s.requote_ms * MS
        next_quote = start + requote
        next_order = start
        next_abuse = start + int(s.abuse_every_s * 1e9)
        price = self.fair.ticks
        turn = 0
        for maker in self.makers:
            maker.requote(price)
        while market.ts < end and (until is None or not until()):
            due = min(next_quote, next_order, next_abuse if s.abuses else end)
            market.ts = max(market.ts, due)
            if market.ts >= next_quote:
                price = self.fair.step()
                for maker in self.makers:
                    maker.requote(price)
                next_quote += requote
            if market.ts >= next_order and self.traders and s.rate > 0:
                run_now(rng.choice(self.traders).act(price))
                next_order += max(MS // 10, int(rng.expovariate(s.rate) * 1e9))
            if s.abuses and market.ts >= next_abuse:
                kind = s.abuses[turn % len(s.abuses)]
                turn += 1
                self.episodes.append(self.abuse(kind, price))
                next_abuse = market.ts + int(s.abuse_every_s * 1e9)
        return self.episodes

    # -- the abusive episodes (the simulator's abusers' patterns, on the simulated clock) --------
    def _accounts(self, n: int, *, fund: bool = True) -> tuple[int, ...]:
        accounts = tuple(range(self.next_account, self.next_account + n))
        self.next_account += n
        if fund:
            for account in accounts:
                self.market.fund(account)
        return accounts

    def abuse(self, kind: str, fair: int) -> Episode:
        market, units, rng = self.market, self.units, self.rng
        symbol = units.spec.symbol
        lot = units.lot(fair)
        step = max(1, fair // 20_000)
        fund = kind not in ("structuring", "in_out")
        accounts = self._accounts(2 if kind == "wash" else 1, fund=fund)
        episode = Episode(kind, accounts, market.seq + 1, ts=market.ts)
        a = accounts[0]
        if kind in ("spoofing", "layering"):
            side = rng.choice((Side.BUY, Side.SELL))
            bid, ask = market.best(symbol)  # just behind the touch, as the simulator means to
            if not (bid if side is Side.BUY else ask):  # nothing to execute against: the other
                side = Side.SELL if side is Side.BUY else Side.BUY
            other = Side.SELL if side is Side.BUY else Side.BUY
            big = lot * rng.randint(150, 300)
            count = 1 if kind == "spoofing" else 4
            placed = []
            if side is Side.BUY:
                touch = bid or (ask - step if ask else fair)
            else:
                touch = ask or (bid + step if bid else fair)
            for level in range(count):
                off = step * (1 + level)
                price = touch - off if side is Side.BUY else touch + off
                qty = big if kind == "spoofing" else big // 3
                events = market.send(
                    NewOrder(a, symbol, "", side, OrdType.LIMIT, qty=qty, price=price)
                )
                placed += [e.order_id for e in events if isinstance(e, OrderAccepted)]
                self.abuse_orders += 1
            market.ts += 50 * MS
            events = market.send(NewOrder(a, symbol, "", other, OrdType.MARKET, qty=lot * 2))
            episode.acted = any(isinstance(e, Trade) for e in events)
            self.abuse_orders += 1
            market.ts += 100 * MS
            for order_id in placed:
                market.send(CancelOrder(a, symbol, order_id))
        elif kind == "wash":
            b = accounts[1]
            for account in accounts:
                market.send(ConfigureAccount(account, a, StpMode.NONE))
            lots = lot * rng.randint(5, 15)
            side = rng.choice((Side.BUY, Side.SELL))
            other = Side.SELL if side is Side.BUY else Side.BUY
            bid, ask = market.best(symbol)
            at = (bid + ask) // 2 if bid and ask and ask - bid > 1 else fair
            market.send(NewOrder(a, symbol, "", side, OrdType.LIMIT, qty=lots, price=at))
            market.ts += MS
            cmd = NewOrder(b, symbol, "", other, OrdType.LIMIT, qty=lots, price=at)
            cmd.tif = TimeInForce.IOC
            episode.acted = any(
                isinstance(e, Trade) and {e.maker_account, e.taker_account} == {a, b}
                for e in market.send(cmd)
            )
            self.abuse_orders += 2
        elif kind == "structuring":
            decimals = self.config.assets["USDT"]
            for _ in range(3):
                amount = (9_900 + rng.randint(0, 99)) * 10**decimals
                market.send(Deposit(a, "USDT", amount, f"st-{market.seq}"))
                market.ts += rng.randint(1, 5) * 1_000 * MS
        elif kind == "in_out":
            amount = rng.randint(20_000, 50_000) * 10 ** self.config.assets["USDT"]
            market.send(Deposit(a, "USDT", amount, f"io-{market.seq}"))
            market.ts += rng.randint(1, 10) * 1_000 * MS
            market.send(Withdraw(a, "USDT", amount, market.seq, f"io-{market.seq}"))
        elif kind == "otr":  # orders and cancels far from the touch, nothing traded
            far = fair - fair // 20
            for _ in range(550):
                events = market.send(
                    NewOrder(a, symbol, "", Side.BUY, OrdType.LIMIT, qty=lot, price=far)
                )
                self.abuse_orders += 1
                for e in events:
                    if isinstance(e, OrderAccepted):
                        market.send(CancelOrder(a, symbol, e.order_id))
                market.ts += 2 * MS
        else:
            raise ValueError(f"unknown abuse {kind}")
        episode.last_seq = market.seq
        return episode
