"""User data events as Binance sends them (user-data-stream.md): ``executionReport`` for every
change of an order, ``balanceUpdate`` for deposits, withdrawals and adjustments, and
``outboundAccountPosition`` with the balances a command changed; per account, fed by durable
events only.

:class:`UserData` follows the venue after the door's read models (the market history numbers
the trades, ``Activity`` holds the orders' views at the end of each command), so a report reads
the order's terms and times there and walks the command's events for what changed at each step:
the cumulative quantity and cumulative quote quantity (``Z``) of every event are exact even when
one command fills an order several times (the view's notional at the end, minus this command's
fills, is where the walk starts). Commissions come from the ``TradeSettled`` events, trade ids
from the history, prevented match ids from ``Activity``.

Each event is encoded once, as its JSON text, and handed to every follower of its account (the
WebSocket API wraps it in ``{"subscriptionId", "event"}`` by concatenation, without encoding it
again). A connection's messages wait in its :class:`Outbox`, bounded by ``ws_max_pending_bytes``:
a consumer that falls that far behind is disconnected, never buffered without bound.

Also the older path: ``/ws/<listenKey>`` (:meth:`UserData.serve_listen_key`) sends the account's
raw events, and is closed when its key is deleted or expires (``listenKeyExpired`` first).

Not sent: ``REJECTED`` execution reports (Binance sends them only for the new order of a
cancel-replace whose cancel succeeded; the core's ``OrderRejected`` carries no order terms to
fill one), ``listStatus`` (no order lists) and ``externalLockUpdate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import WSMsgType, web

from engine.events import (
    BalanceAdjusted,
    BalanceChanged,
    Deposited,
    DepositReversed,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderDone,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    SelfTradePrevented,
    Trade,
    TradeSettled,
    WithdrawalHeld,
    WithdrawalReleased,
)
from engine.types import CancelReason, OrderStatus, OrdType, Side, TimeInForce
from gateway.edge.orders import EXPIRY_REASONS, OrderView, OrderViews, side_fee
from gateway.rest.activity import fee_text
from gateway.rest.context import SERVED, Served
from gateway.rest.dialect import new_client_order_id
from gateway.rest.errors import compact

__all__ = ["Deliver", "Outbox", "UserData", "add_user_data", "find_user_data", "user_data_of"]

log = logging.getLogger("gateway.rest.userdata")

#: A follower of an account: called with each event's JSON text.
Deliver = Callable[[str], object]
#: How often listen keys are checked for expiry (seconds).
EXPIRY_CHECK_S = 5.0
HEARTBEAT_S = 20.0
PARTICIPANT = "participant"

#: Binance's expiry reasons (``eR``) for the venue's.
_EXPIRY = {
    CancelReason.IOC_REMAINDER: "UNFILLED_IOC_QUANTITY_EXPIRED",
    CancelReason.FOK_NOT_FILLED: "UNFILLED_FOK_ORDER_EXPIRED",
    CancelReason.NO_LIQUIDITY: "INSUFFICIENT_LIQUIDITY",
    CancelReason.MARKET_PROTECTION: "EXECUTION_RULE_PRICE_RANGE_EXCEEDED",
    CancelReason.TRIGGERED_OUTSIDE_BAND: "EXECUTION_RULE_PRICE_RANGE_EXCEEDED",
    CancelReason.GTD_EXPIRED: "EXCHANGE_CANCELED",
    CancelReason.DAY_EXPIRED: "EXCHANGE_CANCELED",
}
_NO_REST = frozenset({TimeInForce.IOC, TimeInForce.FOK})


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class Outbox:
    """One connection's messages waiting to be written, and the task that writes them.

    Bounded by ``limit`` bytes: past it the connection is closed (1008), its queue dropped, and
    a write stuck on a consumer that does not read is aborted."""

    __slots__ = (
        "abort",
        "close_code",
        "close_reason",
        "closed",
        "limit",
        "pending",
        "pending_bytes",
        "sending",
        "sent",
        "wakeup",
        "ws",
    )

    def __init__(
        self, ws: web.WebSocketResponse, limit: int, abort: Callable[[], None] | None = None
    ) -> None:
        self.ws = ws
        self.limit = limit
        self.abort = abort
        self.pending: deque[str] = deque()
        self.pending_bytes = 0
        self.wakeup = asyncio.Event()
        self.closed = False
        self.sending = False
        self.sent = 0
        self.close_code = 1000
        self.close_reason = b""

    def put(self, text: str) -> bool:
        """Queue ``text``; False when the connection is closed or just was for being slow."""
        if self.closed:
            return False
        self.pending_bytes += len(text)
        if self.pending_bytes > self.limit:
            self.shut(1008, b"consumer too slow", drop=True)
            return False
        self.pending.append(text)
        self.wakeup.set()
        return True

    def shut(self, code: int, reason: bytes, *, drop: bool) -> None:
        """Close: at once (``drop``: what waits is forgotten) or once what waits is written."""
        if self.closed:
            return
        self.closed = True
        self.close_code, self.close_reason = code, reason
        if drop:
            self.pending.clear()
            self.pending_bytes = 0
            if self.sending and self.abort is not None:
                self.abort()  # the write is stuck on a peer that does not read
        self.wakeup.set()

    async def run(self) -> None:
        """Write what is queued until the connection closes."""
        ws = self.ws
        try:
            while True:
                await self.wakeup.wait()
                self.wakeup.clear()
                while self.pending:
                    text = self.pending.popleft()
                    self.pending_bytes -= len(text)
                    self.sending = True
                    try:
                        await ws.send_str(text)
                    finally:
                        self.sending = False
                    self.sent += 1
                if self.closed:
                    if not ws.closed:
                        await ws.close(code=self.close_code, message=self.close_reason)
                    return
        except (ConnectionError, RuntimeError):
            self.closed = True


class _Listener:
    """A ``/ws/<listenKey>`` connection."""

    __slots__ = ("account", "key", "outbox")

    def __init__(self, key: str, account: int, outbox: Outbox) -> None:
        self.key = key
        self.account = account
        self.outbox = outbox


class UserData:
    """The accounts' user data events, handed to their followers."""

    def __init__(self, served: Served) -> None:
        self.served = served
        #: account -> follower number -> deliver
        self.followers: dict[int, dict[int, Deliver]] = {}
        self._next = 1
        self._exec_id = 0
        self._unsubscribe: list[Callable[[], None]] = []
        self._timer: asyncio.Task[None] | None = None
        self.listeners: set[_Listener] = set()
        self.published = 0

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the venue (after the door's read models: they were subscribed first)."""
        self._unsubscribe.append(self.served.venue.subscribe(self.on_events))
        self.served.extra["close_listen_key"] = self.close_listen_key
        self.served.user_stream = self.serve_listen_key
        self._timer = asyncio.get_running_loop().create_task(
            self._expiry_loop(), name="rest-listen-keys"
        )

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            with contextlib.suppress(ValueError):
                unsubscribe()
        self._unsubscribe.clear()
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        for listener in list(self.listeners):
            listener.outbox.shut(1001, b"server stopping", drop=False)

    def follow(self, account: int, deliver: Deliver) -> Callable[[], None]:
        """Hand ``account``'s events to ``deliver`` from the next durable command on; the
        unfollower."""
        number = self._next
        self._next += 1
        self.followers.setdefault(account, {})[number] = deliver

        def unfollow() -> None:
            followers = self.followers.get(account)
            if followers is not None:
                followers.pop(number, None)
                if not followers:
                    del self.followers[account]

        return unfollow

    # -- events ----------------------------------------------------------------------------------

    def on_events(self, seq: int, ts: int, events: list[Event]) -> None:
        if not self.followers:
            return
        try:
            built = self.build(seq, ts, events)
        except Exception:  # a read model out of step must not stop the venue's publication
            log.exception("user data events of command %d cannot be built", seq)
            return
        for account, payloads in built.items():
            followers = self.followers.get(account)
            if not followers:
                continue
            for payload in payloads:
                text = _dumps(payload)
                for deliver in list(followers.values()):
                    deliver(text)
                self.published += 1

    def build(self, seq: int, ts: int, events: Sequence[Event]) -> dict[int, list[dict[str, Any]]]:
        """The user data events of one durable command, per followed account, in order:
        execution reports and balance updates as the events come, then one account position
        per account whose balances changed."""
        followed = self.followers
        ms = ts // 1_000_000
        now = self.served.venue.now_ms()
        out: dict[int, list[dict[str, Any]]] = {}
        reports = _Walk(self, events, ms, now)
        positions: dict[int, list[dict[str, str]]] = {}
        assets = self.served.assets
        for event in events:
            if isinstance(event, OrderAccepted):
                if event.account in followed:
                    out.setdefault(event.account, []).append(reports.new(event))
            elif isinstance(event, Trade):
                for account, maker in ((event.maker_account, True), (event.taker_account, False)):
                    if account in followed:
                        report = reports.trade(event, maker=maker)
                        if report is not None:
                            out.setdefault(account, []).append(report)
            elif isinstance(event, OrderDone):
                if event.account in followed:
                    report = reports.done(event)
                    if report is not None:
                        out.setdefault(event.account, []).append(report)
            elif isinstance(event, OrderReplaced):
                if event.account in followed:
                    report = reports.replaced(event)
                    if report is not None:
                        out.setdefault(event.account, []).append(report)
            elif isinstance(event, OrderTriggered):
                if event.account in followed:
                    report = reports.triggered(event)
                    if report is not None:
                        out.setdefault(event.account, []).append(report)
            elif isinstance(event, SelfTradePrevented):
                reports.prevented(event)
            elif isinstance(
                event,
                Deposited | BalanceAdjusted | WithdrawalHeld | WithdrawalReleased | DepositReversed,
            ):
                if event.account in followed and event.amount:
                    delta = event.amount
                    if isinstance(event, WithdrawalHeld | DepositReversed):
                        delta = -delta
                    out.setdefault(event.account, []).append(
                        {
                            "e": "balanceUpdate",
                            "E": now,
                            "a": event.asset,
                            "d": fee_text(delta, event.asset, assets),
                            "T": ms,
                        }
                    )
            elif (
                isinstance(event, BalanceChanged)
                and event.kind == PARTICIPANT
                and event.account in followed
            ):
                positions.setdefault(event.account, []).append(
                    {
                        "a": event.asset,
                        "f": fee_text(event.total - event.locked, event.asset, assets),
                        "l": fee_text(event.locked, event.asset, assets),
                    }
                )
        for account, balances in positions.items():
            out.setdefault(account, []).append(
                {"e": "outboundAccountPosition", "E": now, "u": ms, "B": balances}
            )
        return out

    def execution_id(self, seq: int) -> int:
        """Unique and increasing: at least the command's seq times 65536."""
        self._exec_id = max(self._exec_id + 1, seq << 16)
        return self._exec_id

    # -- the listen-key path ---------------------------------------------------------------------

    async def serve_listen_key(self, request: web.Request, key: str) -> web.StreamResponse:
        """``/ws/<listenKey>``: the account's raw events until the key is deleted or expires."""
        served = self.served
        found = served.listen_keys.get(key)
        if found is None:
            return web.json_response(
                {"code": -1125, "msg": "This listenKey does not exist."}, status=400, dumps=compact
            )
        account = found[0]
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096, compress=False)
        await ws.prepare(request)
        transport = request.transport
        outbox = Outbox(
            ws,
            served.config.ws_max_pending_bytes,
            transport.abort if transport is not None else None,
        )
        listener = _Listener(key, account, outbox)
        self.listeners.add(listener)
        unfollow = self.follow(account, outbox.put)
        writer = asyncio.get_running_loop().create_task(outbox.run())
        lifetime = asyncio.get_running_loop().call_later(
            served.config.ws_lifetime_s, lambda: outbox.shut(1000, b"", drop=False)
        )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY or msg.type is WSMsgType.TEXT:
                    continue  # nothing to ask on this path: ignored, as Binance does
        finally:
            lifetime.cancel()
            unfollow()
            self.listeners.discard(listener)
            outbox.shut(1000, b"", drop=True)
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    def close_listen_key(self, key: str) -> None:
        """The key was deleted: close its connections."""
        for listener in [x for x in self.listeners if x.key == key]:
            listener.outbox.shut(1000, b"listen key closed", drop=False)

    def expire_listen_keys(self, now_ms: int) -> None:
        """Forget the keys not kept alive and close their connections (``listenKeyExpired``
        first, as Binance sends it)."""
        keys = self.served.listen_keys
        for key, (_, until) in list(keys.items()):
            if until < now_ms:
                del keys[key]
        for listener in list(self.listeners):
            if listener.key not in keys and not listener.outbox.closed:
                listener.outbox.put(
                    _dumps({"e": "listenKeyExpired", "E": now_ms, "listenKey": listener.key})
                )
                listener.outbox.shut(1000, b"listen key expired", drop=False)

    async def _expiry_loop(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_CHECK_S)
            try:
                self.expire_listen_keys(self.served.venue.now_ms())
            except Exception:
                log.exception("the listen keys' expiry failed")


class _Walk:
    """One command's execution reports: the running cumulative quote quantity of each order,
    its prevented matches, the fees of its trades."""

    def __init__(self, data: UserData, events: Sequence[Event], ms: int, now: int) -> None:
        self.data = data
        self.served = data.served
        self.events = events
        self.ms = ms
        self.now = now
        self.seq = self.served.activity.seq
        self._settled: dict[int, TradeSettled] | None = None
        self._notional: dict[int, int] | None = None
        #: order id -> the last SelfTradePrevented of this command it took part in, with its id
        self._prevented: dict[int, tuple[SelfTradePrevented, int]] = {}
        self._stp_count = sum(1 for e in events if isinstance(e, SelfTradePrevented))
        self._stp_seen = 0

    def _view(self, order_id: int) -> OrderView | None:
        return self.served.activity.orders.get(order_id)

    def _running(self) -> dict[int, int]:
        """order id -> notional before this command's fills (the view holds it after them)."""
        if self._notional is None:
            filled: dict[int, int] = {}
            for event in self.events:
                if isinstance(event, Trade):
                    amount = event.price * event.qty
                    for order_id in (event.maker_order_id, event.taker_order_id):
                        filled[order_id] = filled.get(order_id, 0) + amount
            running: dict[int, int] = {}
            for order_id, amount in filled.items():
                view = self._view(order_id)
                if view is not None:
                    running[order_id] = view.notional - amount
            self._notional = running
        return self._notional

    def _notional_of(self, view: OrderView) -> int:
        running = self._running()
        return running.get(view.order_id, view.notional)

    def _report(
        self,
        view: OrderView,
        *,
        x: str,
        status: str,
        client_order_id: str,
        orig_client_order_id: str = "",
        cum_qty: int,
        notional: int,
        on_book: bool,
        price: int | None = None,
        qty: int | None = None,
    ) -> dict[str, Any]:
        units = self.served.symbols.units[view.instrument]
        created, _, working = self.served.activity.times_of(view.order_id)
        report: dict[str, Any] = {
            "e": "executionReport",
            "E": self.now,
            "s": self.served.symbols.name(view.instrument),
            "c": client_order_id,
            "S": view.side.name,
            "o": view.ord_type.name,
            "f": view.tif.name,
            "q": units.lot.text(view.qty if qty is None else qty),
            "p": units.tick.text(view.price if price is None else price),
            "P": units.tick.text(view.stop_price),
            "F": units.lot.text(view.display_qty),
            "g": -1,
            "C": orig_client_order_id,
            "x": x,
            "X": status,
            "r": "NONE",
            "i": view.order_id,
            "l": units.lot.text(0),
            "z": units.lot.text(cum_qty),
            "L": units.tick.text(0),
            "n": "0",
            "N": None,
            "T": self.ms,
            "t": -1,
            "I": self.data.execution_id(self.seq),
            "w": on_book,
            "m": False,
            "M": False,
            "O": created or self.ms,
            "Z": units.quote.text(notional),
            "Y": units.quote.text(0),
            "Q": units.quote.text(view.quote_qty),
            "V": view.stp_mode.name,
        }
        if view.status is not OrderStatus.PENDING_TRIGGER:
            report["W"] = working or self.ms
        return report

    def new(self, e: OrderAccepted) -> dict[str, Any]:
        view = self._view(e.order_id)
        if view is None:  # not remembered: the acceptance says everything a NEW report needs
            view = OrderViews(0).accepted(e)
        pending = e.status is OrderStatus.PENDING_TRIGGER
        rests = e.ord_type is not OrdType.MARKET and e.tif not in _NO_REST and not pending
        report = self._report(
            view,
            x="NEW",
            status="NEW",
            client_order_id=e.client_order_id,
            cum_qty=0,
            notional=0,
            on_book=rests,
            price=e.price,
            qty=e.qty,
        )
        if pending:
            report.pop("W", None)
        return report

    def _fees(self) -> dict[int, TradeSettled]:
        if self._settled is None:
            self._settled = {e.trade_id: e for e in self.events if isinstance(e, TradeSettled)}
        return self._settled

    def trade(self, t: Trade, *, maker: bool) -> dict[str, Any] | None:
        order_id = t.maker_order_id if maker else t.taker_order_id
        view = self._view(order_id)
        if view is None:
            return None
        running = self._running()
        notional = running.get(order_id, view.notional - t.price * t.qty) + t.price * t.qty
        running[order_id] = notional
        cum = t.maker_cum_qty if maker else t.taker_cum_qty
        leaves = t.maker_leaves if maker else t.taker_leaves
        units = self.served.symbols.units[view.instrument]
        report = self._report(
            view,
            x="TRADE",
            status="FILLED" if leaves == 0 else "PARTIALLY_FILLED",
            client_order_id=t.maker_client_order_id if maker else t.taker_client_order_id,
            cum_qty=cum,
            notional=notional,
            on_book=leaves > 0 and view.ord_type is not OrdType.MARKET and view.tif not in _NO_REST,
        )
        side = view.side
        fee, asset = 0, ""
        settled = self._fees().get(t.trade_id)
        if settled is not None:
            fee, asset = side_fee(side, settled)
        spec = units.spec
        trade_id = self.served.history.symbol_trade_id(t.instrument, t.trade_id) or t.trade_id
        report.update(
            {
                "l": units.lot.text(t.qty),
                "L": units.tick.text(t.price),
                "n": fee_text(fee, asset, self.served.assets),
                "N": asset or (spec.base if side is Side.BUY else spec.quote),
                "t": trade_id,
                "m": maker,
                "Y": units.quote.text(t.price * t.qty),
            }
        )
        return report

    def prevented(self, e: SelfTradePrevented) -> None:
        last = self.served.activity.last_prevented_id
        prevented_id = last - self._stp_count + 1 + self._stp_seen
        self._stp_seen += 1
        self._prevented[e.taker_order_id] = (e, prevented_id)
        self._prevented[e.maker_order_id] = (e, prevented_id)

    def done(self, e: OrderDone) -> dict[str, Any] | None:
        view = self._view(e.order_id)
        if view is None:
            return None
        notional = self._notional_of(view)
        if isinstance(e, OrderCancelled) or e.reason not in EXPIRY_REASONS:
            served = self.served
            cancel_id = served.cancel_ids.get((e.account, e.order_id)) or served.cancel_ids.get(
                (e.account, e.client_order_id)
            )
            return self._report(
                view,
                x="CANCELED",
                status="CANCELED",
                client_order_id=cancel_id or new_client_order_id(),
                orig_client_order_id=e.client_order_id,
                cum_qty=e.cum_qty,
                notional=notional,
                on_book=False,
            )
        assert isinstance(e, OrderExpired)
        if e.reason is CancelReason.SELF_TRADE:
            report = self._report(
                view,
                x="TRADE_PREVENTION",
                status="EXPIRED_IN_MATCH",
                client_order_id=e.client_order_id,
                cum_qty=e.cum_qty,
                notional=notional,
                on_book=False,
            )
            found = self._prevented.get(e.order_id)
            if found is not None:
                report.update(self._prevention(view, e.order_id, *found))
            return report
        report = self._report(
            view,
            x="EXPIRED",
            status="EXPIRED",
            client_order_id=e.client_order_id,
            cum_qty=e.cum_qty,
            notional=notional,
            on_book=False,
        )
        reason = _EXPIRY.get(e.reason)
        if reason is not None:
            report["eR"] = reason
        return report

    def _prevention(
        self, view: OrderView, order_id: int, e: SelfTradePrevented, prevented_id: int
    ) -> dict[str, Any]:
        units = self.served.symbols.units[view.instrument]
        counter = e.maker_order_id if order_id == e.taker_order_id else e.taker_order_id
        qty = units.lot.text(e.qty)
        return {
            "v": prevented_id,
            "A": qty,
            "B": qty,
            "u": prevented_id,
            "U": counter,
            "Cs": self.served.symbols.name(e.instrument),
            "pl": qty,
            "pL": units.tick.text(e.price),
            "pY": units.quote.text(e.price * e.qty),
        }

    def replaced(self, e: OrderReplaced) -> dict[str, Any] | None:
        view = self._view(e.order_id)
        if view is None:
            return None
        return self._report(
            view,
            x="REPLACED",
            status="PARTIALLY_FILLED" if e.cum_qty else "NEW",
            client_order_id=e.client_order_id,
            orig_client_order_id=e.orig_client_order_id,
            cum_qty=e.cum_qty,
            notional=self._notional_of(view),
            on_book=e.leaves > 0,
            price=e.price,
            qty=e.qty,
        )

    def triggered(self, e: OrderTriggered) -> dict[str, Any] | None:
        """A stop order entered the book: Binance reports it as NEW again, now working."""
        view = self._view(e.order_id)
        if view is None:
            return None
        return self._report(
            view,
            x="NEW",
            status="NEW",
            client_order_id=e.client_order_id,
            cum_qty=0,
            notional=0,
            on_book=view.ord_type not in (OrdType.STOP_LOSS, OrdType.TAKE_PROFIT),
        )


_USER_DATA = web.AppKey("user_data", UserData)


def add_user_data(app: web.Application) -> None:
    """Start the accounts' user data with the application (after the read models)."""

    async def on_startup(app: web.Application) -> None:
        served = app[SERVED]
        data = UserData(served)
        app[_USER_DATA] = data
        await served.venue.read(lambda core: data.start())

    async def on_shutdown(app: web.Application) -> None:
        data = app.get(_USER_DATA)
        if data is not None:
            await data.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)


def user_data_of(app: web.Application) -> UserData:
    return app[_USER_DATA]


def find_user_data(app: web.Application) -> UserData | None:
    """The application's user data once it started (None before, or without it)."""
    return app.get(_USER_DATA)
