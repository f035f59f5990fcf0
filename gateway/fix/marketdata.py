"""FIX market data (V -> W, X, Y) and reference data (x -> y), fed by the core's event stream.

Rules of engagement: ``fix_specs/README.md`` section 3 ("Reference data", "Market data").

How the increments are made. ``on_events`` runs after the core applied a command, so the books
already show its result and cannot be diffed "before/after". Instead every subscribed instrument
keeps, per *stream*, its own aggregated view of the levels its subscribers see (price ->
(visible quantity, order count)) and diffs it against the core's book after each command that
touched the instrument. Only the levels that can have changed are compared: the handler keeps,
for subscribed instruments only, the price and side of every resting order, so the events of a
command name the levels they touched (a cancel names an order, not a price).

A stream is the subscribers of one instrument with the same MarketDepth and MDEntryTypes. They
see the same entries, so ``RptSeq(83)`` counts per stream: one per entry, no gaps, identical
for every subscriber of it, and a snapshot (W) carries the number of the last update it
includes. Subscribers with another depth or other entry types see other entries and so need
their own count to stay gap-free. A new stream starts at the instrument's highest RptSeq so far,
so the numbers of a symbol never go backwards while the venue runs.

Nothing is done for instruments nobody subscribes to: ``on_events`` returns at once when there is
no subscription at all, and costs one dict lookup per event otherwise.

Imports the engine only (never ``venue`` or ``clearing``).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Final

from engine.book import BookSide
from engine.core import Core, Market
from engine.events import (
    CancelRejected,
    Event,
    IcebergRefreshed,
    InstrumentStateChanged,
    MassCancelDone,
    OrderAccepted,
    OrderDone,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReferencePriceSet,
    ReplaceRejected,
    SelfTradePrevented,
    Trade,
)
from engine.instrument import InstrumentSpec
from engine.types import OrderStatus, Side
from engine.units import UnitScale
from gateway.fix.codec import FixMessage
from gateway.fix.errors import FixCodecError
from gateway.fix.session import BusinessRejectReason, Session
from gateway.fix.timestamps import format_utc_timestamp

__all__ = ["MDReqRejReason", "MarketDataHandler", "SecurityRequestResult"]

_BUY: Final = Side.BUY
_PENDING_TRIGGER: Final = OrderStatus.PENDING_TRIGGER

#: MDEntryType (269) -> bit of a stream's entry mask.
_BID: Final = 1
_OFFER: Final = 2
_TRADE: Final = 4
_ENTRY_BITS: Final = {b"0": _BID, b"1": _OFFER, b"2": _TRADE}

#: MDUpdateAction (279).
_NEW: Final = b"0"
_CHANGE: Final = b"1"
_DELETE: Final = b"2"

#: Entries per MarketDataIncrementalRefresh: a mass cancel of a deep book stays well below a
#: client's maximum message size (about 60 bytes an entry).
MAX_ENTRIES_PER_INCREMENT: Final = 100

#: Events naming one order (``order_id``, ``account``) whose level may have changed.
_ORDER_EVENTS: Final = (OrderAccepted, OrderDone, OrderReplaced, OrderTriggered, IcebergRefreshed)
#: Events of an instrument that never change its book.
_NO_BOOK_CHANGE: Final = (
    OrderRejected,
    CancelRejected,
    ReplaceRejected,
    MassCancelDone,
    InstrumentStateChanged,
    ReferencePriceSet,
)
#: Every event about one instrument's book or trading (the risk stage's money events, which
#: repeat a trade's instrument, change no book). The engine's tests check none is missing.
_NAMES_INSTRUMENT: Final = (Trade, SelfTradePrevented, *_ORDER_EVENTS, *_NO_BOOK_CHANGE)

# Entry layouts, in the dictionary's order of the group's fields.
_X_LEVEL: Final = b"279=%b\x01269=%b\x0155=%b\x0183=%d\x01270=%b\x01271=%b\x01346=%d\x01"
_X_DELETE: Final = b"279=2\x01269=%b\x0155=%b\x0183=%d\x01270=%b\x01"
_X_TRADE: Final = b"279=0\x01269=2\x0155=%b\x0183=%d\x01270=%b\x01271=%b\x01272=%b\x01273=%b\x01"
_W_LEVEL: Final = b"269=%b\x01270=%b\x01271=%b\x01346=%d\x01"
_W_TRADE: Final = b"269=2\x01270=%b\x01271=%b\x01272=%b\x01273=%b\x01"
_SIDE_TYPE: Final = {True: b"0", False: b"1"}


class MDReqRejReason:
    """MDReqRejReason (281) values the handler sends."""

    UNKNOWN_SYMBOL = b"0"
    DUPLICATE_MDREQID = b"1"
    UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE = b"4"
    UNSUPPORTED_MARKET_DEPTH = b"5"
    UNSUPPORTED_MD_UPDATE_TYPE = b"6"
    UNSUPPORTED_AGGREGATED_BOOK = b"7"
    UNSUPPORTED_MD_ENTRY_TYPE = b"8"


class SecurityRequestResult:
    """SecurityRequestResult (560) values."""

    VALID = 0
    INVALID_REQUEST = 1
    NO_MATCH = 2


#: (action, price, visible qty, order count) of one level change.
_LevelOp = tuple[bytes, int, int, int]
_View = dict[int, tuple[int, int]]


class _Instrument:
    """What the handler needs of one instrument, precomputed once."""

    __slots__ = ("market", "price", "qty", "spec", "symbol", "symbol_bytes")

    def __init__(self, spec: InstrumentSpec, market: Market) -> None:
        self.spec = spec
        self.market = market
        self.symbol = spec.symbol
        self.symbol_bytes = spec.symbol.encode("latin-1")
        self.price = UnitScale(spec.tick_size).format
        self.qty = UnitScale(spec.lot_size).format


class _Sub:
    """One MDReqID x symbol of a session (what the subscription limit counts)."""

    __slots__ = ("full_refresh", "req_id", "session", "stream")

    def __init__(
        self, session: Session, req_id: bytes, stream: _Stream, full_refresh: bool
    ) -> None:
        self.session = session
        self.req_id = req_id
        self.stream = stream
        self.full_refresh = full_refresh


class _Stream:
    """Subscribers of one instrument sharing depth and entry types, hence entries and RptSeq."""

    __slots__ = ("asks", "bids", "depth", "inst", "key", "mask", "rpt_seq", "subs")

    def __init__(self, inst: _Instrument, depth: int, mask: int, rpt_seq: int) -> None:
        market = inst.market
        self.inst = inst
        self.key = (depth, mask)
        self.depth = depth
        self.mask = mask
        self.rpt_seq = rpt_seq
        self.bids: _View | None = _view(market.bids, depth) if mask & _BID else None
        self.asks: _View | None = _view(market.asks, depth) if mask & _OFFER else None
        self.subs: list[_Sub] = []


class _Tracked:
    """A subscribed instrument: its streams and where its resting orders rest."""

    __slots__ = ("inst", "orders", "streams")

    def __init__(self, inst: _Instrument) -> None:
        self.inst = inst
        #: order id -> (is bid, price) of every resting order: a cancel names only the order.
        self.orders = _index(inst.market)
        self.streams: dict[tuple[int, int], _Stream] = {}


class _Pending:
    """What one command did to a subscribed instrument."""

    __slots__ = ("refs", "tracked", "trades")

    def __init__(self, tracked: _Tracked) -> None:
        self.tracked = tracked
        self.refs: list[tuple[int, int]] = []  # (order id, account) of every order named
        self.trades: list[tuple[int, int]] = []  # (price, qty)


class _Reject(Exception):
    """A MarketDataRequest refused with a MarketDataRequestReject."""

    def __init__(self, reason: bytes | None, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class MarketDataHandler:
    """SecurityListRequest and MarketDataRequest for every FIX session, and the refreshes."""

    def __init__(
        self,
        core: Core,
        specs: Mapping[str, InstrumentSpec],
        *,
        max_symbols_per_request: int = 50,
        instruments_per_security_list: int = 100,
    ) -> None:
        self._core = core
        self._specs = dict(sorted(specs.items()))
        self._max_symbols = max_symbols_per_request
        self._per_list = max(1, instruments_per_security_list)
        #: Instruments market data can serve: configured and in the core.
        self._instruments = {
            symbol: _Instrument(spec, core.markets[symbol])
            for symbol, spec in self._specs.items()
            if symbol in core.markets
        }
        self._tracked: dict[str, _Tracked] = {}
        self._subs: dict[Session, dict[bytes, list[_Sub]]] = {}
        self._counts: dict[Session, int] = {}
        #: Highest RptSeq of streams that ended, per symbol, so a new stream continues from it.
        self._high: dict[str, int] = {}
        # SecurityResponseIDs unique across restarts too: the start time, then a counter.
        self._response_prefix = b"%x-" % time.time_ns()
        self._response_ids = itertools.count(1)

    # -- reference data --------------------------------------------------------------------------

    def security_list(self, session: Session, msg: FixMessage) -> None:
        """Answer a SecurityListRequest (x) with one or more SecurityList (y) messages."""
        req_id = msg.get(320)
        if not req_id:
            session.business_reject(
                msg,
                BusinessRejectReason.CONDITIONALLY_REQUIRED_FIELD_MISSING,
                "SecurityReqID (320) missing",
            )
            return
        head = b"320=%b\x01322=%b%d\x01" % (
            req_id,
            self._response_prefix,
            next(self._response_ids),
        )
        specs = self._select(msg)
        if isinstance(specs, int):
            session.send(b"y", head + b"560=%d\x01" % specs, msg)
            return
        total = len(specs)
        step = self._per_list
        for start in range(0, total, step):
            chunk = specs[start : start + step]
            last = b"Y" if start + step >= total else b"N"
            body = [head, b"560=0\x01393=%d\x01893=%b\x01146=%d\x01" % (total, last, len(chunk))]
            body.extend(map(self._security_entry, chunk))
            session.send(b"y", b"".join(body), msg)

    def _select(self, msg: FixMessage) -> list[InstrumentSpec] | int:
        """The instruments a SecurityListRequest asks for, or its SecurityRequestResult."""
        subscription = msg.get(263)
        if subscription is not None and subscription != b"0":
            return SecurityRequestResult.INVALID_REQUEST  # no security list subscriptions
        request_type = msg.get(559)
        if request_type == b"4":
            specs = list(self._specs.values())
        elif request_type == b"0":
            symbol = msg.get(55)
            if symbol is None:
                return SecurityRequestResult.INVALID_REQUEST
            spec = self._specs.get(symbol.decode("latin-1"))
            specs = [] if spec is None else [spec]
        else:
            return SecurityRequestResult.INVALID_REQUEST
        return specs or SecurityRequestResult.NO_MATCH

    def _security_entry(self, spec: InstrumentSpec) -> bytes:
        market = self._core.markets.get(spec.symbol)
        state = spec.initial_state if market is None else market.state
        lots = UnitScale(spec.lot_size)
        return b"55=%b\x0115=%b\x01561=%b\x01562=%b\x01969=%b\x0125003=%b\x0158=%b\x01" % (
            spec.symbol.encode("latin-1"),
            spec.quote.encode("latin-1"),
            lots.format(1),
            lots.format(spec.min_qty),
            UnitScale(spec.tick_size).format(1),
            UnitScale(spec.tick_size * spec.lot_size).format(spec.min_notional),
            state.name.encode("ascii"),
        )

    # -- market data requests --------------------------------------------------------------------

    def market_data_request(
        self, session: Session, msg: FixMessage, max_subscriptions: int
    ) -> None:
        """Answer a MarketDataRequest (V): snapshots, a subscription, or an unsubscribe."""
        req_id = msg.get(262)
        if not req_id:
            session.business_reject(
                msg,
                BusinessRejectReason.CONDITIONALLY_REQUIRED_FIELD_MISSING,
                "MDReqID (262) missing",
            )
            return
        try:
            self._request(session, msg, req_id, max_subscriptions)
        except _Reject as reject:
            body = b"262=%b\x01" % req_id
            if reject.reason is not None:
                body += b"281=%b\x01" % reject.reason
            body += b"58=%b\x01" % _text(reject.text)
            session.send(b"Y", body, msg)

    def _request(
        self, session: Session, msg: FixMessage, req_id: bytes, max_subscriptions: int
    ) -> None:
        kind = msg.get(263)
        if kind == b"2":
            self._unsubscribe(session, req_id)
            return
        if kind != b"0" and kind != b"1":
            raise _Reject(
                MDReqRejReason.UNSUPPORTED_SUBSCRIPTION_REQUEST_TYPE,
                "unsupported SubscriptionRequestType",
            )
        active = self._subs.get(session)
        if active is not None and req_id in active:
            raise _Reject(MDReqRejReason.DUPLICATE_MDREQID, "duplicate MDReqID")
        aggregated = msg.get(266)
        if aggregated is not None and aggregated != b"Y":
            raise _Reject(
                MDReqRejReason.UNSUPPORTED_AGGREGATED_BOOK, "only aggregated books (266=Y)"
            )
        raw_depth = msg.get(264)
        if raw_depth is None:
            depth = 0
        elif raw_depth.isdigit():
            depth = int(raw_depth)
        else:
            raise _Reject(MDReqRejReason.UNSUPPORTED_MARKET_DEPTH, "unsupported MarketDepth")
        update_type = msg.get(265)
        if update_type is not None and update_type != b"0" and update_type != b"1":
            raise _Reject(MDReqRejReason.UNSUPPORTED_MD_UPDATE_TYPE, "unsupported MDUpdateType")
        full_refresh = update_type == b"0"
        mask = self._entry_mask(msg)
        symbols = self._symbols(session, msg)
        if kind == b"0":
            for inst in symbols:
                self._send_snapshot(session, msg, req_id, inst, depth, mask)
            return
        count = self._counts.get(session, 0)
        if count + len(symbols) > max_subscriptions:
            raise _Reject(None, "subscription limit")
        subs: list[_Sub] = []
        for inst in symbols:
            stream = self._stream(inst, depth, mask)
            sub = _Sub(session, req_id, stream, full_refresh)
            stream.subs.append(sub)
            subs.append(sub)
        # Registered before anything is written: a write that ends the connection calls
        # session_closed, which must find them.
        self._subs.setdefault(session, {})[req_id] = subs
        self._counts[session] = count + len(subs)
        for sub in subs:
            self._send_stream_snapshot(sub, (), b"", msg)

    @staticmethod
    def _entry_mask(msg: FixMessage) -> int:
        try:
            entries = msg.group(267, 269, ())
        except FixCodecError:
            entries = []
        mask = 0
        for entry in entries:
            bit = _ENTRY_BITS.get(entry[0][1], 0)
            if not bit:
                raise _Reject(
                    MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE,
                    f"unsupported MDEntryType {entry[0][1].decode('latin-1')}",
                )
            mask |= bit
        if not mask:
            raise _Reject(MDReqRejReason.UNSUPPORTED_MD_ENTRY_TYPE, "no MDEntryType")
        return mask

    def _symbols(self, session: Session, msg: FixMessage) -> list[_Instrument]:
        """The request's instruments, each once, in the order asked."""
        layout = session.dictionary.group_layout(msg.msg_type, 146)
        delimiter, members = layout if layout is not None else (55, frozenset({55}))
        try:
            entries = msg.group(146, delimiter, members)
        except FixCodecError:
            entries = []
        names = [value for entry in entries for tag, value in entry if tag == 55]
        if not names:
            raise _Reject(None, "no symbols")
        if len(names) > self._max_symbols:
            raise _Reject(None, "too many symbols")
        found: list[_Instrument] = []
        for name in dict.fromkeys(names):
            inst = self._instruments.get(name.decode("latin-1"))
            if inst is None:
                raise _Reject(
                    MDReqRejReason.UNKNOWN_SYMBOL, f"unknown symbol {name.decode('latin-1')}"
                )
            found.append(inst)
        return found

    def _unsubscribe(self, session: Session, req_id: bytes) -> None:
        active = self._subs.get(session)
        subs = None if active is None else active.pop(req_id, None)
        if subs is None:
            raise _Reject(None, "unknown MDReqID")
        for sub in subs:
            self._detach(sub)
        self._counts[session] -= len(subs)

    def session_closed(self, session: Session) -> None:
        """Logout or disconnect: its subscriptions end (a client re-subscribes after logon)."""
        active = self._subs.pop(session, None)
        self._counts.pop(session, None)
        for subs in (active or {}).values():
            for sub in subs:
                self._detach(sub)

    def subscription_count(self, session: Session) -> int:
        """Live subscriptions of a session (MDReqID x symbol), as the limit counts them."""
        return self._counts.get(session, 0)

    # -- streams ---------------------------------------------------------------------------------

    def _stream(self, inst: _Instrument, depth: int, mask: int) -> _Stream:
        tracked = self._tracked.get(inst.symbol)
        if tracked is None:
            tracked = self._tracked[inst.symbol] = _Tracked(inst)
        stream = tracked.streams.get((depth, mask))
        if stream is None:
            rpt_seq = self._high_rpt_seq(inst.symbol)
            stream = tracked.streams[(depth, mask)] = _Stream(inst, depth, mask, rpt_seq)
        return stream

    def _high_rpt_seq(self, symbol: str) -> int:
        high = self._high.get(symbol, 0)
        tracked = self._tracked.get(symbol)
        if tracked is not None:
            for stream in tracked.streams.values():
                high = max(high, stream.rpt_seq)
        return high

    def _detach(self, sub: _Sub) -> None:
        stream = sub.stream
        stream.subs.remove(sub)
        if stream.subs:
            return
        symbol = stream.inst.symbol
        tracked = self._tracked[symbol]
        del tracked.streams[stream.key]
        self._high[symbol] = max(self._high.get(symbol, 0), stream.rpt_seq)
        if not tracked.streams:
            del self._tracked[symbol]

    # -- snapshots -------------------------------------------------------------------------------

    def _send_snapshot(
        self,
        session: Session,
        msg: FixMessage,
        req_id: bytes,
        inst: _Instrument,
        depth: int,
        mask: int,
    ) -> None:
        """A snapshot without subscription: from a live stream when one matches (its RptSeq
        then means something), else straight from the book."""
        tracked = self._tracked.get(inst.symbol)
        stream = None if tracked is None else tracked.streams.get((depth, mask))
        if stream is not None:
            entries = _stream_entries(inst, stream)
            rpt_seq = stream.rpt_seq
        else:
            market = inst.market
            entries = []
            if mask & _BID:
                entries += _book_entries(inst, True, market.bids.depth(depth))
            if mask & _OFFER:
                entries += _book_entries(inst, False, market.asks.depth(depth))
            rpt_seq = self._high_rpt_seq(inst.symbol)
        session.send(b"W", _snapshot_body(req_id, inst, rpt_seq, entries), msg, store=False)

    def _send_stream_snapshot(
        self,
        sub: _Sub,
        trades: Sequence[tuple[int, int]],
        stamp: bytes,
        route: FixMessage | None = None,
    ) -> None:
        stream = sub.stream
        inst = stream.inst
        entries = _stream_entries(inst, stream)
        if trades and stream.mask & _TRADE:
            date, at = stamp[:8], stamp[9:]
            price, qty = inst.price, inst.qty
            entries.extend(_W_TRADE % (price(p), qty(q), date, at) for p, q in trades)
        body = _snapshot_body(sub.req_id, inst, stream.rpt_seq, entries)
        sub.session.send(b"W", body, route, store=False)

    # -- the event stream ------------------------------------------------------------------------

    def on_events(self, seq: int, ts: int, events: Sequence[Event]) -> None:
        """After every durable command, in seq order: refresh the subscribers of the
        instruments its events touched."""
        tracked = self._tracked
        if not tracked:
            return
        pending: dict[str, _Pending] | None = None
        for event in events:
            if not isinstance(event, _NAMES_INSTRUMENT):
                continue
            symbol = event.instrument
            instrument = tracked.get(symbol)
            if instrument is None:
                continue
            if pending is None:
                pending = {}
            work = pending.get(symbol)
            if work is None:
                work = pending[symbol] = _Pending(instrument)
            if isinstance(event, Trade):
                work.refs.append((event.maker_order_id, event.maker_account))
                work.refs.append((event.taker_order_id, event.taker_account))
                work.trades.append((event.price, event.qty))
            elif isinstance(event, _ORDER_EVENTS):
                work.refs.append((event.order_id, event.account))
            elif isinstance(event, SelfTradePrevented):
                work.refs.append((event.maker_order_id, event.maker_account))
                work.refs.append((event.taker_order_id, event.taker_account))
        if pending is not None:
            for work in pending.values():
                self._publish(work, ts)

    def _publish(self, work: _Pending, ts: int) -> None:
        tracked = work.tracked
        market = tracked.inst.market
        bid_prices: set[int] = set()
        ask_prices: set[int] = set()
        index = tracked.orders
        find = self._core.order
        for order_id, account in work.refs:
            old = index.pop(order_id, None)
            if old is not None:
                (bid_prices if old[0] else ask_prices).add(old[1])
            order = find(account, order_id)
            if order is not None and order.status is not _PENDING_TRIGGER:
                is_bid = order.side is _BUY
                index[order_id] = (is_bid, order.price)
                (bid_prices if is_bid else ask_prices).add(order.price)
        trades = work.trades
        if not (bid_prices or ask_prices or trades):
            return
        inst = tracked.inst
        symbol = inst.symbol_bytes
        price, qty = inst.price, inst.qty
        stamp = format_utc_timestamp(ts) if trades else b""
        for stream in list(tracked.streams.values()):
            entries: list[bytes] = []
            rpt = stream.rpt_seq
            if trades and stream.mask & _TRADE:
                date, at = stamp[:8], stamp[9:]
                for p, q in trades:
                    rpt += 1
                    entries.append(_X_TRADE % (symbol, rpt, price(p), qty(q), date, at))
            for is_bid, view, side, touched in (
                (True, stream.bids, market.bids, bid_prices),
                (False, stream.asks, market.asks, ask_prices),
            ):
                if view is None or not touched:
                    continue
                new_view, ops = _diff(view, side, stream.depth, touched)
                if is_bid:
                    stream.bids = new_view
                else:
                    stream.asks = new_view
                entry_type = _SIDE_TYPE[is_bid]
                for action, p, q, count in ops:
                    rpt += 1
                    if action == _DELETE:
                        entries.append(_X_DELETE % (entry_type, symbol, rpt, price(p)))
                    else:
                        entries.append(
                            _X_LEVEL % (action, entry_type, symbol, rpt, price(p), qty(q), count)
                        )
            if not entries:
                continue
            stream.rpt_seq = rpt
            chunks = [
                b"".join(entries[i : i + MAX_ENTRIES_PER_INCREMENT])
                for i in range(0, len(entries), MAX_ENTRIES_PER_INCREMENT)
            ]
            sizes = [
                min(MAX_ENTRIES_PER_INCREMENT, len(entries) - i)
                for i in range(0, len(entries), MAX_ENTRIES_PER_INCREMENT)
            ]
            for sub in list(stream.subs):
                if sub.full_refresh:
                    self._send_stream_snapshot(sub, trades, stamp)
                    continue
                head = b"262=%b\x01268=" % sub.req_id
                send = sub.session.send
                for chunk, size in zip(chunks, sizes, strict=True):
                    send(b"X", b"%b%d\x01%b" % (head, size, chunk), store=False)


# -- helpers ---------------------------------------------------------------------------------------


def _index(market: Market) -> dict[int, tuple[bool, int]]:
    index = {order.order_id: (True, order.price) for order in market.bids.orders()}
    index.update((order.order_id, (False, order.price)) for order in market.asks.orders())
    return index


def _view(side: BookSide, depth: int) -> _View:
    """Levels best first (dicts keep that order for snapshots of a depth-limited view)."""
    return {price: (qty, count) for price, qty, count in side.depth(depth)}


def _diff(
    view: _View, side: BookSide, depth: int, touched: set[int] | None
) -> tuple[_View, list[_LevelOp]]:
    """The side's new view and the level changes from ``view``: deletions first, then new and
    changed levels, each best first (a depth-N client never holds more than N levels).

    Full depth compares only the ``touched`` prices (all when None); depth N recomputes the
    window, so levels entering or leaving it are new or deleted.
    """
    bids = side.sign > 0
    deleted: list[int] = []
    ops: list[_LevelOp] = []
    if depth:
        new_view = _view(side, depth)
        for p, level in new_view.items():
            old = view.get(p)
            if old is None:
                ops.append((_NEW, p, level[0], level[1]))
            elif old != level:
                ops.append((_CHANGE, p, level[0], level[1]))
        deleted = [p for p in view if p not in new_view]
    else:
        new_view = view
        levels = side.levels
        prices = touched if touched is not None else view.keys() | levels.keys()
        for p in sorted(prices, reverse=bids):
            found = levels.get(p)
            old = view.get(p)
            if found is None:
                if old is not None:
                    del view[p]
                    deleted.append(p)
                continue
            level = (found.qty, found.count)
            if old is None:
                ops.append((_NEW, p, level[0], level[1]))
            elif old != level:
                ops.append((_CHANGE, p, level[0], level[1]))
            else:
                continue
            view[p] = level
    deleted.sort(reverse=bids)
    return new_view, [(_DELETE, p, 0, 0) for p in deleted] + ops


def _book_entries(inst: _Instrument, bids: bool, levels: list[tuple[int, int, int]]) -> list[bytes]:
    entry_type = _SIDE_TYPE[bids]
    price, qty = inst.price, inst.qty
    return [_W_LEVEL % (entry_type, price(p), qty(q), c) for p, q, c in levels]


def _stream_entries(inst: _Instrument, stream: _Stream) -> list[bytes]:
    entries: list[bytes] = []
    for bids, view in ((True, stream.bids), (False, stream.asks)):
        if view is not None:
            levels = sorted(view.items(), reverse=bids)
            entries += _book_entries(inst, bids, [(p, q, c) for p, (q, c) in levels])
    return entries


def _snapshot_body(req_id: bytes, inst: _Instrument, rpt_seq: int, entries: list[bytes]) -> bytes:
    head = b"262=%b\x0155=%b\x0183=%d\x01268=%d\x01" % (
        req_id,
        inst.symbol_bytes,
        rpt_seq,
        len(entries),
    )
    return head + b"".join(entries)


def _text(text: str) -> bytes:
    return text.replace("\x01", " ").encode("latin-1", "replace")
