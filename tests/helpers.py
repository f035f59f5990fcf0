"""Test driver for the matching core: stamps commands, checks the fields of events that can be
derived from earlier events, and renders events as compact tuples for golden comparisons.

The compact form leaves out what the driver already checks on every event: the account, client
order id and instrument of events that name an order id (Trade, OrderCancelled, OrderExpired,
OrderTriggered, IcebergRefreshed, SelfTradePrevented, OrderReplaced) must match what the order's
OrderAccepted (and later OrderReplaced) said, so a golden list of compact tuples still pins every
field of every event.
"""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Any

from engine.commands import (
    CancelOrder,
    ConfigureAccount,
    MassCancel,
    NewOrder,
    ReplaceOrder,
    SetInstrumentState,
    SetKillSwitch,
    SetReferencePrice,
    Tick,
)
from engine.core import Core
from engine.events import (
    AccountConfigured,
    CancelRejected,
    CommandRejected,
    Event,
    IcebergRefreshed,
    InstrumentStateChanged,
    KillSwitchChanged,
    MassCancelDone,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReferencePriceSet,
    ReplaceRejected,
    SelfTradePrevented,
    Trade,
    book_changes,
)
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.types import (
    CancelReason,
    InstrumentState,
    MassCancelScope,
    OrdType,
    Side,
    StpMode,
    TimeInForce,
)

SYM = "BTC-USD"
SYM2 = "ETH-USD"
NS = 1_000_000_000
DAY_NS = 86_400 * NS
#: 2023-11-14 00:00:00 UTC, a midnight, so session times are easy to read.
MIDNIGHT = 19_675 * DAY_NS
#: Default start of a test: 10:00 UTC that day.
T0 = MIDNIGHT + 10 * 3600 * NS

Row = tuple[Any, ...]


def spec(
    symbol: str = SYM,
    *,
    min_qty: int = 1,
    max_qty: int = 1_000_000,
    min_notional: int = 0,
    band_bps: int = 1_000,
    reference_price: int = 0,
    state: InstrumentState = InstrumentState.OPEN,
) -> InstrumentSpec:
    """An instrument with tick and lot of 1 so that prices and quantities read as they are."""
    return InstrumentSpec(
        symbol=symbol,
        base=symbol.split("-")[0],
        quote=symbol.split("-")[1],
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        min_qty=min_qty,
        max_qty=max_qty,
        min_notional=min_notional,
        price_band_bps=band_bps,
        reference_price=reference_price,
        initial_state=state,
    )


def _n(value: Any) -> Any:
    return value.name if isinstance(value, Enum) else value


def compact(event: Event, default_symbol: str = SYM) -> Row:
    """One event as a short tuple; enums by name; rarely set fields as ``"key=value"``."""
    e: Any = event
    opts: list[str] = []
    inst = getattr(e, "instrument", default_symbol)
    if isinstance(e, OrderAccepted):
        for key, value in (
            ("quote", e.quote_qty),
            ("stop", e.stop_price),
            ("display", e.display_qty),
            ("expire", e.expire_time),
        ):
            if value:
                opts.append(f"{key}={value}")
        opts.append(f"stp={e.stp_mode.name}")
        if e.session:
            opts.append(f"session={e.session}")
        if inst != default_symbol:
            opts.append(f"inst={inst}")
        return (
            "Accepted",
            e.order_id,
            e.account,
            e.client_order_id,
            _n(e.side),
            _n(e.ord_type),
            _n(e.tif),
            e.price,
            e.qty,
            _n(e.status),
            *opts,
        )
    if inst != default_symbol:
        opts.append(f"inst={inst}")
    if isinstance(e, OrderRejected):
        if e.session:
            opts.append(f"session={e.session}")
        return ("Rejected", e.account, e.client_order_id, _n(e.reason), *opts)
    if isinstance(e, Trade):
        return (
            "Trade",
            e.trade_id,
            e.price,
            e.qty,
            _n(e.taker_side),
            e.maker_order_id,
            e.maker_leaves,
            e.maker_cum_qty,
            e.taker_order_id,
            e.taker_leaves,
            e.taker_cum_qty,
            *opts,
        )
    if isinstance(e, OrderCancelled):
        return ("Cancelled", e.order_id, e.qty, e.cum_qty, _n(e.reason), *opts)
    if isinstance(e, OrderExpired):
        return ("Expired", e.order_id, e.qty, e.cum_qty, _n(e.reason), *opts)
    if isinstance(e, CancelRejected):
        return (
            "CancelRejected",
            e.account,
            e.order_id,
            e.client_order_id,
            _n(e.reason),
            *opts,
        )
    if isinstance(e, OrderReplaced):
        return (
            "Replaced",
            e.order_id,
            e.orig_client_order_id,
            e.client_order_id,
            e.price,
            e.qty,
            e.stop_price,
            e.leaves,
            e.cum_qty,
            e.priority_kept,
            *opts,
        )
    if isinstance(e, ReplaceRejected):
        return (
            "ReplaceRejected",
            e.account,
            e.order_id,
            e.orig_client_order_id,
            e.client_order_id,
            _n(e.reason),
            *opts,
        )
    if isinstance(e, OrderTriggered):
        return ("Triggered", e.order_id, e.stop_price, e.last_price, *opts)
    if isinstance(e, SelfTradePrevented):
        return (
            "STP",
            _n(e.mode),
            e.taker_order_id,
            e.maker_order_id,
            e.price,
            e.qty,
            e.taker_leaves,
            e.maker_leaves,
            *opts,
        )
    if isinstance(e, IcebergRefreshed):
        return ("Iceberg", e.order_id, e.visible_qty, e.leaves, *opts)
    if isinstance(e, MassCancelDone):
        return (
            "MassCancelDone",
            _n(e.scope),
            e.account,
            e.instrument,
            e.session,
            e.request_id,
            e.cancelled,
            _n(e.reason),
        )
    if isinstance(e, InstrumentStateChanged):
        return ("State", e.instrument, _n(e.state))
    if isinstance(e, KillSwitchChanged):
        return ("KillSwitch", e.active)
    if isinstance(e, ReferencePriceSet):
        return ("RefPrice", e.instrument, e.price)
    if isinstance(e, AccountConfigured):
        return ("AccountConfigured", e.account, e.owner, _n(e.stp_default))
    if isinstance(e, CommandRejected):
        return ("CommandRejected", _n(e.reason), e.detail)
    raise AssertionError(f"unknown event {e!r}")


class Venue:
    """A core plus a sequencer stand-in. Every call returns the command's events in compact form
    (``send`` returns the raw events)."""

    def __init__(
        self,
        *specs: InstrumentSpec,
        default_stp: StpMode = StpMode.EXPIRE_TAKER,
        session_end_s: int = 0,
        start_ts: int = T0,
    ) -> None:
        self.core = Core(
            list(specs) or [spec()], default_stp=default_stp, session_end_s=session_end_s
        )
        self.default_symbol = (list(specs) or [spec()])[0].symbol
        self.seq = 0
        self.ts = start_ts
        self._clid = 0
        #: order id -> (account, client order id, instrument), from OrderAccepted / OrderReplaced
        self.known: dict[int, tuple[int, str, str]] = {}
        self.log: list[tuple[Any, list[Event]]] = []
        self.stops: set[int] = set()  # waiting stop orders, as ``book_changes`` follows them

    # -- sequencing --------------------------------------------------------------------------
    def send(self, cmd: Any, *, at: int | None = None) -> list[Event]:
        self.seq += 1
        self.ts = self.ts + 1_000 if at is None else at
        cmd.seq = self.seq
        cmd.ts = self.ts
        ids = {symbol: m.update_id for symbol, m in self.core.markets.items()}
        events = self.core.apply(cmd)
        self._check_derived(events)
        moved = {
            s: m.update_id - ids[s] for s, m in self.core.markets.items() if m.update_id != ids[s]
        }
        assert moved == book_changes(events, self.stops), f"book update ids after {cmd}"
        self.log.append((cmd, events))
        return events

    def run(self, cmd: Any, *, at: int | None = None) -> list[Row]:
        return [compact(e, self.default_symbol) for e in self.send(cmd, at=at)]

    def _check_derived(self, events: list[Event]) -> None:
        for e in events:
            if isinstance(e, OrderAccepted):
                assert e.order_id not in self.known, f"order id reused: {e}"
                self.known[e.order_id] = (e.account, e.client_order_id, e.instrument)
            elif isinstance(e, OrderReplaced):
                acct, clid, inst = self.known[e.order_id]
                assert (acct, clid, inst) == (e.account, e.orig_client_order_id, e.instrument), e
                self.known[e.order_id] = (acct, e.client_order_id, inst)
            elif isinstance(e, Trade):
                assert self.known[e.maker_order_id] == (
                    e.maker_account,
                    e.maker_client_order_id,
                    e.instrument,
                ), e
                assert self.known[e.taker_order_id] == (
                    e.taker_account,
                    e.taker_client_order_id,
                    e.instrument,
                ), e
            elif isinstance(e, OrderCancelled | OrderExpired | OrderTriggered):
                assert self.known[e.order_id] == (
                    e.account,
                    e.client_order_id,
                    e.instrument,
                ), e
            elif isinstance(e, IcebergRefreshed):
                assert self.known[e.order_id][0::2] == (e.account, e.instrument), e
            elif isinstance(e, SelfTradePrevented):
                assert self.known[e.taker_order_id][0::2] == (e.taker_account, e.instrument), e
                assert self.known[e.maker_order_id][0::2] == (e.maker_account, e.instrument), e

    # -- order entry -------------------------------------------------------------------------
    def next_clid(self) -> str:
        self._clid += 1
        return f"c{self._clid}"

    def order(
        self,
        account: int,
        side: Side,
        ord_type: OrdType = OrdType.LIMIT,
        qty: int = 0,
        price: int = 0,
        *,
        clid: str | None = None,
        symbol: str | None = None,
        at: int | None = None,
        **kw: Any,
    ) -> list[Row]:
        cmd = NewOrder(
            account=account,
            instrument=symbol or self.default_symbol,
            client_order_id=self.next_clid() if clid is None else clid,
            side=side,
            ord_type=ord_type,
            qty=qty,
            price=price,
            **kw,
        )
        return self.run(cmd, at=at)

    def buy(self, account: int, price: int, qty: int, **kw: Any) -> list[Row]:
        return self.order(account, Side.BUY, kw.pop("ord_type", OrdType.LIMIT), qty, price, **kw)

    def sell(self, account: int, price: int, qty: int, **kw: Any) -> list[Row]:
        return self.order(account, Side.SELL, kw.pop("ord_type", OrdType.LIMIT), qty, price, **kw)

    def cancel(
        self,
        account: int,
        order_id: int = 0,
        clid: str = "",
        *,
        symbol: str | None = None,
    ) -> list[Row]:
        return self.run(CancelOrder(account, symbol or self.default_symbol, order_id, clid))

    def replace(
        self,
        account: int,
        order_id: int,
        qty: int,
        price: int,
        *,
        orig_clid: str = "",
        clid: str = "",
        stop_price: int = 0,
        symbol: str | None = None,
    ) -> list[Row]:
        return self.run(
            ReplaceOrder(
                account,
                symbol or self.default_symbol,
                order_id,
                orig_clid,
                clid,
                qty,
                price,
                stop_price,
            )
        )

    def mass_cancel(self, scope: MassCancelScope, **kw: Any) -> list[Row]:
        return self.run(MassCancel(scope, **kw))

    def tick(self, at: int | None = None) -> list[Row]:
        return self.run(Tick(), at=at)

    def configure(self, account: int, owner: int, stp: StpMode) -> list[Row]:
        return self.run(ConfigureAccount(account, owner, stp))

    def set_state(self, state: InstrumentState, symbol: str | None = None) -> list[Row]:
        return self.run(SetInstrumentState(symbol or self.default_symbol, state))

    def kill(self, active: bool, cancel_orders: bool = True) -> list[Row]:
        return self.run(SetKillSwitch(active, cancel_orders))

    def set_reference(self, price: int, symbol: str | None = None) -> list[Row]:
        return self.run(SetReferencePrice(symbol or self.default_symbol, price))

    # -- book queries ------------------------------------------------------------------------
    def bids(self, symbol: str | None = None) -> list[tuple[int, int, int]]:
        return self.core.markets[symbol or self.default_symbol].bids.depth(0)

    def asks(self, symbol: str | None = None) -> list[tuple[int, int, int]]:
        return self.core.markets[symbol or self.default_symbol].asks.depth(0)

    def bid_ids(self, symbol: str | None = None) -> list[int]:
        return [o.order_id for o in self.core.markets[symbol or self.default_symbol].bids.orders()]

    def ask_ids(self, symbol: str | None = None) -> list[int]:
        return [o.order_id for o in self.core.markets[symbol or self.default_symbol].asks.orders()]

    def stop_ids(self, symbol: str | None = None) -> list[int]:
        return [o.order_id for o in self.core.markets[symbol or self.default_symbol].stops.orders()]

    def get(self, account: int, order_id: int) -> Order | None:
        return self.core.order(account, order_id)

    def book_state(self, symbol: str | None = None) -> tuple[Any, ...]:
        """Everything about one instrument's book and stop book (for "nothing changed" checks)."""
        m = self.core.markets[symbol or self.default_symbol]
        return (
            [o.as_tuple() for o in m.bids.orders()],
            [o.as_tuple() for o in m.asks.orders()],
            [o.as_tuple() for o in m.stops.orders()],
            m.last_price,
            m.ref_price,
            int(m.state),
        )


__all__ = [
    "DAY_NS",
    "MIDNIGHT",
    "NS",
    "SYM",
    "SYM2",
    "T0",
    "CancelReason",
    "InstrumentState",
    "MassCancelScope",
    "OrdType",
    "Side",
    "StpMode",
    "TimeInForce",
    "Venue",
    "compact",
    "spec",
]
