"""FIX order entry and drop copy: NewOrderSingle, cancel, replace, status, mass cancel and mass
status in; ExecutionReports, OrderCancelRejects and OrderMassCancelReports out.

Requests become engine commands posted to the venue (:meth:`VenuePort.post`); nothing is
answered before the command is durable. Every durable command's events come back through
:meth:`OrderEntry.on_command` in sequence order, whoever sent the command (this gateway, REST,
the operator, the Tick timer), and are turned into reports for:

- the session that entered the order (its owner, from ``NewOrder.session``), so fills of a
  resting order, expiries and operator cancels reach it too, and reports for a session that is
  disconnected are stored and delivered by its next Logon's resend;
- the session that asked (cancel and replace rejects, mass cancel reports);
- every drop copy session entitled to the order's account, with ``CopyMsgIndicator(797)=Y``.

ExecIDs are ``<seq>-<n>`` (the command's journal seq, the event's index; a trade's two reports
add ``M`` for the maker and ``T`` for the taker), unique venue-wide and the same on the copy.
Refusals the gateway decides itself (a decimal off the tick or lot, an account the session may
not use) never reach the journal; their ExecIDs are ``G<start>-<n>``.

Numbers follow fix_specs/README.md: prices in ticks and quantities in lots inside, decimal
strings on the wire, converted exactly by the edge (:mod:`gateway.edge`, :mod:`engine.units`).
CumQty, AvgPx, LeavesQty and OrdStatus are rendered from the order view every door shares
(:mod:`gateway.edge.orders`), fed here one event at a time so each report shows its moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from engine.commands import CancelOrder, Command, MassCancel, NewOrder, Origin, ReplaceOrder
from engine.core import Core
from engine.events import (
    CancelRejected,
    CommandRejected,
    Event,
    MassCancelDone,
    OrderAccepted,
    OrderCancelled,
    OrderDone,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReplaceRejected,
    SelfTradePrevented,
    Trade,
    TradeSettled,
)
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.replay import Replayer
from engine.types import (
    CancelReason,
    Door,
    MassCancelScope,
    OrderStatus,
    OrdType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from engine.units import UnitScale
from gateway.edge.orders import OrderView, OrderViews, avg_px, side_fee, view_of
from gateway.edge.refusals import FIX_REASONS, Refusal
from gateway.edge.requests import Edge, InstrumentUnits, OrderRequest, ReplaceRequest, find_live
from gateway.fix.codec import FixMessage
from gateway.fix.errors import TimestampError
from gateway.fix.mapping import ORD_STATUS, ORD_TYPES, TIME_IN_FORCE
from gateway.fix.session import BusinessRejectReason, Session
from gateway.fix.timestamps import format_utc_timestamp, parse_utc_timestamp

__all__ = ["OrderEntry", "SessionProfile", "VenuePort"]

log = logging.getLogger("gateway.fix.orders")

_SIDES = {b"1": Side.BUY, b"2": Side.SELL}
_SIDE_BYTES = {Side.BUY: b"1", Side.SELL: b"2"}
_TIFS = {v.encode(): k for k, v in TIME_IN_FORCE.items()}
_TIF_BYTES = {k: v.encode() for k, v in TIME_IN_FORCE.items()}
_STATUS_BYTES = {k: v.encode() for k, v in ORD_STATUS.items()}
_ORD_TYPE_BYTES = {k: v[0].encode() for k, v in ORD_TYPES.items()}
_MAX_AFFECTED_LISTED = 500
#: Digits of a numeric identifier beyond which it names nothing (ids are below 2**63).
_MAX_ID_DIGITS = 19


class VenuePort(Protocol):
    """What the gateway needs of the running venue."""

    @property
    def core(self) -> Core: ...

    def post(self, cmd: Command) -> None:
        """Queue a command; raises when the venue does not run."""

    def query(self, fn: Callable[[Core], object]) -> None:
        """Call ``fn(core)`` once the commands posted before it are durable; raises when the
        venue does not run."""


@dataclass(slots=True)
class SessionProfile:
    """What a session may do, from the venue's configuration."""

    kind: str  # order_entry, drop_copy, market_data
    accounts: frozenset[int]
    cancel_on_disconnect: bool = False
    max_md_subscriptions: int = 100
    #: CancelOnDisconnect(25004) of the current Logon, overriding the configured value
    cancel_on_disconnect_now: bool | None = None

    @property
    def default_account(self) -> int:
        return next(iter(self.accounts)) if len(self.accounts) == 1 else 0


@dataclass(slots=True)
class _Request:
    """A posted command's origin, for answering the requester."""

    session: Session
    msg_type: bytes
    cl_ord_id: bytes = b""
    orig_cl_ord_id: bytes = b""
    order_id: bytes = b""
    side: bytes = b""
    extra: dict[int, bytes] | None = None
    msg: FixMessage | None = None  # the request, for the fields a reject repeats


class _Business(Exception):
    """A request answered with a BusinessMessageReject."""

    def __init__(self, reason: int, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class OrderEntry:
    """Order entry and drop copy for every FIX session of the venue."""

    def __init__(
        self,
        venue: VenuePort,
        specs: Iterable[InstrumentSpec],
        profiles: Mapping[str, SessionProfile],
        sessions: Mapping[str, Session],
        asset_decimals: Mapping[str, int] | None = None,
    ) -> None:
        self.venue = venue
        self.edge = Edge(specs, asset_decimals or {})
        self.scales = self.edge.instruments
        self.profiles = profiles
        self.sessions = sessions
        self.asset_decimals = dict(asset_decimals or {})
        #: the orders of the sessions' accounts, as every door sees them (gateway.edge.orders);
        #: none kept once done: a status request for a done order is UNKNOWN_ORDER
        self.views = OrderViews(keep_done=0)
        self._origins: dict[str, Origin] = {}
        self._requests: dict[int, _Request] = {}
        self._drop_copy_map: dict[int, list[Session]] | None = None
        self._watched = {a for p in profiles.values() for a in p.accounts}
        self._gateway_exec = 0
        #: the journal seq of the last command whose reports were handed to the sessions
        self.reported_seq = 0
        self._replay_header = b""
        self._exec_prefix = b"G%d-" % (time.time_ns() // 1_000_000)
        self._fee_scales: dict[str, UnitScale] = {
            asset: UnitScale(Decimal(1).scaleb(-decimals))
            for asset, decimals in self.asset_decimals.items()
        }

    # -- requests in ---------------------------------------------------------------------------

    def handle(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        """An order entry request (D, F, G, H, q, AF) from ``session``."""
        msg_type = msg.msg_type
        try:
            if msg_type == b"D":
                self._new_order(session, profile, msg)
            elif msg_type == b"F":
                self._cancel(session, profile, msg)
            elif msg_type == b"G":
                self._replace(session, profile, msg)
            elif msg_type == b"H":
                self._status(session, profile, msg)
            elif msg_type == b"q":
                self._mass_cancel(session, profile, msg)
            elif msg_type == b"AF":
                self._mass_status(session, profile, msg)
            else:
                raise _Business(
                    BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE, "Unsupported Message Type"
                )
        except _Business as exc:
            session.business_reject(msg, exc.reason, exc.text, msg.get(11))

    def _account(self, profile: SessionProfile, msg: FixMessage) -> int:
        raw = msg.get(1)
        if raw is None:
            account = profile.default_account
            if not account:
                raise _Business(
                    BusinessRejectReason.CONDITIONALLY_REQUIRED_FIELD_MISSING,
                    "Account (1) is required: the session may use several accounts",
                )
            return account
        account = _id_number(raw)
        if not account or account not in profile.accounts:
            raise _Business(
                BusinessRejectReason.NOT_AUTHORIZED,
                f"account {raw[:40].decode('latin-1')} is not entitled to this session",
            )
        return account

    def _post(self, cmd: Command, request: _Request) -> None:
        """Queue ``cmd`` for the venue; a BusinessMessageReject 380=4 when it cannot take it.
        The command is journaled with its origin: this session, the request's ClOrdID, the
        peer's address."""
        session = request.session
        if isinstance(cmd, NewOrder):
            # The order carries its ClOrdID: one origin per connection serves all its orders.
            cmd.origin = self._session_origin(session)
        else:
            cmd.origin = Origin(
                Door.FIX, session.config.key, request.cl_ord_id.decode("latin-1"), session.remote
            )
        try:
            self.venue.post(cmd)
        except Exception as exc:  # the venue is stopping or failed
            log.warning("cannot post a command from %s: %s", request.session.config.key, exc)
            raise _Business(
                BusinessRejectReason.APPLICATION_NOT_AVAILABLE, "the venue is not accepting orders"
            ) from None
        self._requests[id(cmd)] = request

    def _session_origin(self, session: Session) -> Origin:
        """The origin of a session's new orders on its current connection (the request id is
        the order's own ClOrdID, journaled in the command)."""
        key = session.config.key
        origin = self._origins.get(key)
        if origin is None or origin.remote != session.remote:
            origin = self._origins[key] = Origin(Door.FIX, key, "", session.remote)
        return origin

    def _new_order(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        cl_ord_id = msg.get(11) or b""
        account = self._account(profile, msg)
        symbol = (msg.get(55) or b"").decode("latin-1")
        side_raw = msg.get(54) or b""
        request = _Request(session, b"D", cl_ord_id, side=side_raw, msg=msg)
        try:
            cmd = self._build_new_order(session, msg, account, symbol, side_raw, cl_ord_id)
        except Refusal as exc:
            self._send_reject(request, account, symbol, exc.reason, exc.text)
            return
        self._post(cmd, request)

    def _build_new_order(
        self,
        session: Session,
        msg: FixMessage,
        account: int,
        symbol: str,
        side_raw: bytes,
        cl_ord_id: bytes,
    ) -> NewOrder:
        side = _SIDES.get(side_raw)
        if side is None:
            raise Refusal(RejectReason.INVALID_COMMAND, "Side must be 1 (buy) or 2 (sell)")
        ord_type = _ord_type(msg)
        get = msg.index().get
        qty_raw, cash_raw = get(38), get(152)
        if (qty_raw is None) == (cash_raw is None):
            raise _Business(
                BusinessRejectReason.CONDITIONALLY_REQUIRED_FIELD_MISSING,
                "exactly one of OrderQty (38) and CashOrderQty (152) is required",
            )
        tif_raw = get(59)
        tif = TimeInForce.GTC if tif_raw is None else _TIFS.get(tif_raw)
        if tif is None:
            raise Refusal(RejectReason.INVALID_TIME_IN_FORCE)
        expire = 0
        expire_raw = get(126)
        if expire_raw is not None:
            try:
                expire = parse_utc_timestamp(expire_raw)
            except TimestampError as exc:
                raise Refusal(RejectReason.EXPIRE_TIME_IN_PAST, str(exc)) from None
        stp_raw = get(25001)
        stp = StpMode.DEFAULT
        if stp_raw is not None:
            if len(stp_raw) != 1 or not stp_raw.isdigit() or not 1 <= int(stp_raw) <= 5:
                raise Refusal(RejectReason.INVALID_STP_MODE)
            stp = StpMode(int(stp_raw))
        return self.edge.new_order(
            OrderRequest(
                account,
                symbol,
                cl_ord_id.decode("latin-1"),
                side,
                ord_type,
                tif,
                qty=qty_raw,
                quote_qty=cash_raw,
                price=get(44),
                stop_price=get(99),
                display_qty=get(111),
                expire_time=expire,
                stp_mode=stp,
                session=session.config.key,
            )
        )

    def _order_request(
        self, session: Session, profile: SessionProfile, msg: FixMessage
    ) -> tuple[_Request, int, str]:
        """A cancel's or replace's origin, its account and its symbol."""
        account = self._account(profile, msg)
        request = _Request(
            session,
            msg.msg_type,
            msg.get(11) or b"",
            msg.get(41) or b"",
            msg.get(37) or b"",
            msg.get(54) or b"",
        )
        return request, account, (msg.get(55) or b"").decode("latin-1")

    def _cancel(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        request, account, symbol = self._order_request(session, profile, msg)
        order_id_raw, orig = request.order_id, request.orig_cl_ord_id
        order_id = _id_number(order_id_raw)
        if order_id_raw and not order_id:
            self._cancel_reject(request, b"1", RejectReason.UNKNOWN_ORDER, account)
            return
        cmd = CancelOrder(account, symbol, order_id, orig.decode("latin-1"))
        self._post(cmd, request)

    def _replace(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        request, account, symbol = self._order_request(session, profile, msg)
        cl_ord_id = request.cl_ord_id
        order = self._find_live(account, request.order_id, request.orig_cl_ord_id)
        if order is not None:
            request.order_id = b"%d" % order.order_id
        try:
            if order is not None:
                if msg.get(54) not in (None, _SIDE_BYTES[order.side]):
                    raise Refusal(RejectReason.ORDER_NOT_REPLACEABLE, "Side cannot change")
                if msg.get(40) not in (None, _ORD_TYPE_BYTES[order.ord_type]):
                    raise Refusal(RejectReason.ORDER_NOT_REPLACEABLE, "OrdType cannot change")
                if msg.get(59) not in (None, _TIF_BYTES[order.tif]):
                    raise Refusal(RejectReason.ORDER_NOT_REPLACEABLE, "TimeInForce cannot change")
            replace = ReplaceRequest(
                account,
                symbol,
                order.order_id if order is not None else 0,
                request.orig_cl_ord_id.decode("latin-1"),
                cl_ord_id.decode("latin-1"),
                qty=msg.get(38),
                price=msg.get(44),
                stop_price=msg.get(99),
            )
            cmd = self.edge.replace_order(order, replace)
        except Refusal as exc:
            self._cancel_reject(request, b"2", exc.reason, account, exc.text, order)
            return
        self._post(cmd, request)

    def _find_live(self, account: int, order_id_raw: bytes, cl_ord_id: bytes) -> Order | None:
        order_id = _id_number(order_id_raw) if order_id_raw else 0
        if order_id_raw and not order_id:
            return None
        return find_live(self.venue.core, account, order_id, cl_ord_id.decode("latin-1"))

    def _status(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        account = self._account(profile, msg)
        order_id_raw = msg.get(37) or b""
        cl_ord_id = msg.get(11) or b""
        extra = {790: v} if (v := msg.get(790)) else {}
        order = self._find_live(account, order_id_raw, cl_ord_id)
        if order is None:
            view = self._find_view(account, order_id_raw, cl_ord_id)
        else:
            view = self._view_of(order)
        if view is None:
            body = self._unknown_order_report(account, msg, extra)
            session.send(b"8", body)
            return
        session.send(b"8", self._report(view, b"I", self._next_gateway_exec(), extra=extra))

    def _find_view(self, account: int, order_id_raw: bytes, cl_ord_id: bytes) -> OrderView | None:
        if order_id_raw.isdigit():
            view = self.views.open.get(_id_number(order_id_raw))
            return view if view is not None and view.account == account else None
        text = cl_ord_id.decode("latin-1")
        for view in self.views.open.values():
            if view.account == account and view.client_order_id == text:
                return view
        return None

    def _unknown_order_report(
        self, account: int, msg: FixMessage, extra: dict[int, bytes]
    ) -> bytes:
        parts = [
            b"37=NONE\x01",
            b"11=%b\x01" % (msg.get(11) or b"NONE"),
            b"17=%b\x01" % self._next_gateway_exec(),
            b"150=I\x0139=8\x01",
            b"1=%d\x01" % account,
            b"55=%b\x01" % (msg.get(55) or b"NONE"),
            b"54=%b\x01" % (msg.get(54) or b"1"),
            b"151=0\x0114=0\x016=0\x01",
            b"103=5\x0125006=%d\x0158=UNKNOWN_ORDER\x01" % RejectReason.UNKNOWN_ORDER,
            b"60=%b\x01" % format_utc_timestamp(time.time_ns()),
        ]
        parts.extend(b"%d=%b\x01" % kv for kv in extra.items())
        return b"".join(parts)

    def _mass_status(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        account = self._account(profile, msg)
        req_id = msg.get(584) or b""
        req_type = msg.get(585)
        symbol = (msg.get(55) or b"").decode("latin-1")
        orders = self.venue.core.open_orders(account)
        if req_type == b"1":
            orders = [o for o in orders if o.instrument == symbol]
        elif req_type != b"7":
            raise _Business(BusinessRejectReason.OTHER, "MassStatusReqType (585) must be 1 or 7")
        total = len(orders)
        if not orders:
            body = (
                b"37=NONE\x0111=NONE\x0117=%b\x01150=I\x0139=8\x011=%d\x0155=%b\x0154=1\x01"
                b"151=0\x0114=0\x016=0\x01584=%b\x01911=0\x01912=Y\x0158=no matching orders\x01"
                b"60=%b\x01"
                % (
                    self._next_gateway_exec(),
                    account,
                    symbol.encode() or b"NONE",
                    req_id,
                    format_utc_timestamp(time.time_ns()),
                )
            )
            session.send(b"8", body)
            return
        for index, order in enumerate(orders, 1):
            extra = {584: req_id, 911: b"%d" % total}
            if index == total:
                extra[912] = b"Y"
            view = self._view_of(order)
            session.send(b"8", self._report(view, b"I", self._next_gateway_exec(), extra=extra))

    def _mass_cancel(self, session: Session, profile: SessionProfile, msg: FixMessage) -> None:
        account = self._account(profile, msg)
        cl_ord_id = msg.get(11) or b""
        req_type = msg.get(530) or b""
        symbol = (msg.get(55) or b"").decode("latin-1")
        request = _Request(session, b"q", cl_ord_id, extra={530: req_type})
        if req_type == b"1":
            if symbol not in self.scales:
                self._mass_cancel_report(request, 0, [], b"1", RejectReason.UNKNOWN_INSTRUMENT)
                return
            scope = MassCancelScope.ACCOUNT_INSTRUMENT
        elif req_type == b"7":
            scope = MassCancelScope.ACCOUNT
            symbol = ""
        else:
            self._mass_cancel_report(request, 0, [], b"99", RejectReason.INVALID_COMMAND)
            return
        cmd = MassCancel(
            scope,
            account=account,
            instrument=symbol,
            reason=CancelReason.MASS_CANCEL,
            request_id=cl_ord_id.decode("latin-1"),
        )
        self._post(cmd, request)

    def load_open_orders(self, core: Core | None = None) -> int:
        """Take the open orders of ``core`` (the venue's by default; after a restart) into the
        gateway's view, so their later fills, cancels and expiries are reported; how many."""
        return self.views.load(core or self.venue.core, self._reports_on)

    def _reports_on(self, order: Order) -> bool:
        """Whether some session of this gateway is told of ``order``."""
        return order.account in self._watched or order.session in self.sessions

    def partials(self) -> dict[int, tuple[int, int]]:
        """order id -> (cum qty, notional) of the open orders with fills: what AvgPx needs and
        the core does not keep, saved with the reported seq."""
        return self.views.partials()

    def restore_partials(self, partials: Mapping[int, tuple[int, int]]) -> int:
        """Put back the notionals saved by :meth:`partials` for the orders whose filled quantity
        is still what was saved; how many."""
        return self.views.restore_partials(partials)

    def cancel_session_orders(self, session_key: str) -> None:
        """Cancel-on-disconnect: every open order ``session_key`` entered."""
        cmd = MassCancel(
            MassCancelScope.SESSION,
            session=session_key,
            reason=CancelReason.DISCONNECT,
            origin=Origin(Door.FIX, session_key),
        )
        try:
            self.venue.post(cmd)
        except Exception as exc:
            log.error("cancel-on-disconnect for %s could not be posted: %s", session_key, exc)

    # -- events out ------------------------------------------------------------------------------

    def catch_up(
        self,
        replayer: Replayer,
        after_seq: int,
        until_seq: int,
        partials: Mapping[int, tuple[int, int]] | None = None,
    ) -> int:
        """Report again the commands ``after_seq < seq <= until_seq``, whose reports may not have
        reached the sessions' stores before the venue stopped (a crash between the journal's
        fsync and the stores' flush). They go out with PossResend(97)=Y and their original
        ExecIDs, so a client can drop what it already has. The number of commands replayed."""
        count = 0
        self._replay_header = b"97=Y\x01"
        saved = partials or {}

        def start(core: Core) -> None:
            self.load_open_orders(core)
            self.restore_partials(saved)

        try:
            for seq, ts, events in replayer.events(after_seq, until_seq, start):
                self._process(seq, ts, events, None, None)
                count += 1
        finally:
            self._replay_header = b""
        self.reported_seq = max(self.reported_seq, until_seq)
        return count

    def on_command(self, cmd: Command, events: Sequence[Event] | None) -> None:
        """A durable command and its events (``None``: refused before sequencing)."""
        request = self._requests.pop(id(cmd), None)
        if events is None:
            if request is not None:
                self._refused(request, cmd)
            return
        self._process(cmd.seq, cmd.ts, events, request, cmd)

    def _process(
        self,
        seq: int,
        ts: int,
        events: Sequence[Event],
        request: _Request | None,
        cmd: Command | None,
    ) -> None:
        self.reported_seq = seq
        fees: dict[int, TradeSettled] = {}
        if len(events) > 1:
            for event in events:
                if isinstance(event, TradeSettled):
                    fees[event.trade_id] = event
        cancelled: list[OrderCancelled] = []
        for index, event in enumerate(events):
            exec_id = b"%d-%d" % (seq, index)
            if isinstance(event, OrderAccepted):
                self._accepted(event, exec_id, ts, request)
            elif isinstance(event, Trade):
                self._trade(event, exec_id, ts, fees)
            elif isinstance(event, OrderDone):
                if isinstance(event, OrderCancelled):
                    cancelled.append(event)
                self._done(event, exec_id, ts, request)
            elif isinstance(event, OrderRejected):
                self._rejected(event, exec_id, ts, request)
            elif isinstance(event, OrderReplaced):
                self._replaced(event, exec_id, ts, request)
            elif isinstance(event, OrderTriggered):
                self._triggered(event, exec_id, ts)
            elif isinstance(event, SelfTradePrevented):
                self._stp(event, exec_id, ts)
            elif isinstance(event, CancelRejected | ReplaceRejected):
                if request is not None:
                    response = b"1" if isinstance(event, CancelRejected) else b"2"
                    self._cancel_reject(request, response, event.reason, event.account)
            elif isinstance(event, MassCancelDone):
                if request is not None:
                    self._mass_cancel_report(request, event.cancelled, cancelled, b"", None, seq)
            elif isinstance(event, CommandRejected) and request is not None:
                self._command_rejected(request, event.reason, cmd)

    def _refused(self, request: _Request, cmd: Command) -> None:
        self._command_rejected(request, RejectReason.INVALID_COMMAND, cmd)

    def _command_rejected(
        self, request: _Request, reason: RejectReason, cmd: Command | None
    ) -> None:
        if request.msg_type == b"D" and isinstance(cmd, NewOrder):
            self._send_reject(request, cmd.account, cmd.instrument, reason, reason.name)
        elif request.msg_type in (b"F", b"G"):
            account = cmd.account if isinstance(cmd, CancelOrder | ReplaceOrder) else 0
            self._cancel_reject(
                request, b"1" if request.msg_type == b"F" else b"2", reason, account
            )
        elif request.msg_type == b"q":
            self._mass_cancel_report(request, 0, [], b"99", reason)

    def sessions_changed(self) -> None:
        """A session was added at run time: follow its accounts, and its drop copies."""
        self._watched = {a for p in self.profiles.values() for a in p.accounts}
        self._drop_copy_map = None

    @property
    def _drop_copy(self) -> dict[int, list[Session]]:
        """account -> its drop copy sessions (built on first use: the sessions are made after
        the application they run)."""
        mapping = self._drop_copy_map
        if mapping is None:
            mapping = {}
            for key, profile in self.profiles.items():
                if profile.kind == "drop_copy":
                    for account in profile.accounts:
                        mapping.setdefault(account, []).append(self.sessions[key])
            self._drop_copy_map = mapping
        return mapping

    def _emit(self, view: OrderView, body: bytes) -> None:
        header = self._replay_header
        owner = self.sessions.get(view.session)
        if owner is not None:
            owner.send(b"8", body, header=header)
        copies = self._drop_copy.get(view.account)
        if copies:
            copied = body + b"797=Y\x01"
            for copy in copies:
                copy.send(b"8", copied, header=header)

    def _accepted(
        self, e: OrderAccepted, exec_id: bytes, ts: int, request: _Request | None
    ) -> None:
        if e.account not in self._watched and e.session not in self.sessions:
            return
        view = self.views.accepted(e)
        self._emit(view, self._report(view, b"0", exec_id, ts))

    def _trade(self, t: Trade, exec_id: bytes, ts: int, fees: Mapping[int, TradeSettled]) -> None:
        settled = fees.get(t.trade_id)
        fill = self.views.fill
        # one trade, two executions: each side's report has its own ExecID
        for order_id, leaves, cum, liquidity, side_id in (
            (t.maker_order_id, t.maker_leaves, t.maker_cum_qty, b"1", b"M"),
            (t.taker_order_id, t.taker_leaves, t.taker_cum_qty, b"2", b"T"),
        ):
            view = fill(order_id, t, cum, leaves, settled)
            if view is None:
                continue
            scales = self.scales[view.instrument]
            extra = b"32=%b\x0131=%b\x01851=%b\x01" % (
                scales.lot.format(t.qty),
                scales.tick.format(t.price),
                liquidity,
            )
            if settled is not None:
                extra += self._commission(settled, view)
            self._emit(view, self._report(view, b"F", exec_id + side_id, ts, fill=extra))

    def _commission(self, settled: TradeSettled, view: OrderView) -> bytes:
        fee, asset = side_fee(view.side, settled)
        scale = self._fee_scales.get(asset)
        if scale is None:
            return b""
        return b"12=%b\x0113=3\x01479=%b\x01" % (scale.format(fee), asset.encode())

    def _done(self, e: OrderDone, exec_id: bytes, ts: int, request: _Request | None) -> None:
        view = self.views.ended(e)
        if view is None:
            return
        # gateway.fix.mapping.CANCEL_REASONS: 4 for a cancel, C for an expiry (tested equal)
        code = b"C" if view.status is OrderStatus.EXPIRED else b"4"
        extra = b"25005=%d\x01" % e.reason
        cl_ord_id = b""
        if request is not None and request.msg_type == b"F":
            cl_ord_id = request.cl_ord_id
        self._emit(view, self._report(view, code, exec_id, ts, fill=extra, request_id=cl_ord_id))

    def _rejected(
        self, e: OrderRejected, exec_id: bytes, ts: int, request: _Request | None
    ) -> None:
        owner = self.sessions.get(e.session)
        if owner is None or request is None:
            return
        self._send_reject(request, e.account, e.instrument, e.reason, e.reason.name, exec_id, ts)

    def _replaced(
        self, e: OrderReplaced, exec_id: bytes, ts: int, request: _Request | None
    ) -> None:
        view = self.views.replaced(e)
        if view is None:
            return
        self._emit(view, self._report(view, b"5", exec_id, ts))

    def _triggered(self, e: OrderTriggered, exec_id: bytes, ts: int) -> None:
        view = self.views.triggered(e)
        if view is None:
            return
        self._emit(view, self._report(view, b"L", exec_id, ts))

    def _stp(self, e: SelfTradePrevented, exec_id: bytes, ts: int) -> None:
        if e.mode is not StpMode.DECREMENT:
            return
        for order_id, leaves in (
            (e.taker_order_id, e.taker_leaves),
            (e.maker_order_id, e.maker_leaves),
        ):
            view = self.views.decremented(order_id, leaves)
            if view is None:
                continue
            self._emit(view, self._report(view, b"D", exec_id, ts, fill=b"25005=5\x01"))

    # -- building reports ------------------------------------------------------------------------

    def _next_gateway_exec(self) -> bytes:
        self._gateway_exec += 1
        return self._exec_prefix + b"%d" % self._gateway_exec

    def _view_of(self, order: Order) -> OrderView:
        view = self.views.open.get(order.order_id)
        return view if view is not None else view_of(order)

    def _report(
        self,
        view: OrderView,
        exec_type: bytes,
        exec_id: bytes,
        ts: int = 0,
        *,
        fill: bytes = b"",
        extra: Mapping[int, bytes] | None = None,
        request_id: bytes = b"",
    ) -> bytes:
        scales = self.scales[view.instrument]
        static = view.wire or self._static(view, scales)
        cl_ord_id = request_id or view.client_order_id.encode("latin-1") or b"NONE"
        if request_id:
            orig = b"41=%b\x01" % view.client_order_id.encode("latin-1")
        elif view.orig_client_order_id:
            orig = b"41=%b\x01" % view.orig_client_order_id.encode("latin-1")
        else:
            orig = b""
        lot = scales.lot
        changing = b""
        if view.qty:
            changing = b"38=%b\x01" % lot.format(view.qty)
        if view.price:
            changing += b"44=%b\x01" % scales.tick.format(view.price)
        if view.stop_price:
            changing += b"99=%b\x01" % scales.tick.format(view.stop_price)
        tail = b"".join(b"%d=%b\x01" % kv for kv in extra.items()) if extra else b""
        return (
            b"37=%d\x0111=%b\x01%b17=%b\x01150=%b\x0139=%b\x01%b%b151=%b\x0114=%b\x016=%b\x01"
            b"%b%b60=%b\x01"
            % (
                view.order_id,
                cl_ord_id,
                orig,
                exec_id,
                exec_type,
                _STATUS_BYTES[view.status],
                static,
                changing,
                lot.format(view.leaves),
                lot.format(view.cum_qty),
                avg_px(view, scales),
                fill,
                tail,
                format_utc_timestamp(ts or time.time_ns()),
            )
        )

    @staticmethod
    def _static(view: OrderView, scales: InstrumentUnits) -> bytes:
        ord_type, exec_inst, take_profit = ORD_TYPES[view.ord_type]
        parts = [
            b"1=%d\x0155=%b\x0154=%b\x0140=%b\x0159=%b\x01"
            % (
                view.account,
                view.instrument.encode(),
                _SIDE_BYTES[view.side],
                ord_type.encode(),
                _TIF_BYTES[view.tif],
            )
        ]
        if view.quote_qty:
            parts.append(b"152=%b\x01" % scales.quote.format(view.quote_qty))
        if exec_inst:
            parts.append(b"18=%b\x01" % exec_inst.encode())
        if take_profit:
            parts.append(b"25002=Y\x01")
        if view.display_qty:
            parts.append(b"111=%b\x01" % scales.lot.format(view.display_qty))
        if view.expire_time:
            parts.append(b"126=%b\x01" % format_utc_timestamp(view.expire_time))
        static = view.wire = b"".join(parts)
        return static

    def _send_reject(
        self,
        request: _Request,
        account: int,
        symbol: str,
        reason: RejectReason,
        text: str,
        exec_id: bytes = b"",
        ts: int = 0,
    ) -> None:
        ord_rej = FIX_REASONS.get(reason, ("99", "99"))[0].encode()
        parts = [
            b"37=NONE\x0111=%b\x0117=%b\x01150=8\x0139=8\x011=%d\x0155=%b\x0154=%b\x01"
            % (
                request.cl_ord_id or b"NONE",
                exec_id or self._next_gateway_exec(),
                account,
                symbol.encode("latin-1") or b"NONE",
                request.side if request.side in _SIDES else b"1",
            ),
        ]
        if request.msg is not None:
            parts.extend(b"%d=%b\x01" % kv for kv in _echo_fields(request.msg).items())
        parts.append(
            b"151=0\x0114=0\x016=0\x01103=%b\x0125006=%d\x0158=%b\x0160=%b\x01"
            % (ord_rej, reason, _text(text), format_utc_timestamp(ts or time.time_ns()))
        )
        body = b"".join(parts)
        request.session.send(b"8", body)
        if exec_id:  # a sequenced reject: drop copy sees it too
            for copy in self._drop_copy.get(account, ()):
                copy.send(b"8", body + b"797=Y\x01")

    def _cancel_reject(
        self,
        request: _Request,
        response_to: bytes,
        reason: RejectReason,
        account: int,
        text: str = "",
        order: Order | None = None,
    ) -> None:
        cxl = FIX_REASONS.get(reason, ("99", "99"))[1].encode()
        status = b"8"
        order_id = request.order_id or b"NONE"
        if order is None and request.order_id.isdigit():
            view = self.views.open.get(_id_number(request.order_id))
            if view is not None:
                status = _STATUS_BYTES[view.status]
        elif order is not None:
            status = _STATUS_BYTES[order.status]
            order_id = b"%d" % order.order_id
        body = (
            b"37=%b\x0111=%b\x0141=%b\x0139=%b\x011=%d\x01434=%b\x01102=%b\x0125006=%d\x0158=%b\x01"
            b"60=%b\x01"
            % (
                order_id,
                request.cl_ord_id or b"NONE",
                request.orig_cl_ord_id or b"NONE",
                status,
                account,
                response_to,
                cxl,
                reason,
                _text(text or reason.name),
                format_utc_timestamp(time.time_ns()),
            )
        )
        request.session.send(b"9", body)

    def _mass_cancel_report(
        self,
        request: _Request,
        total: int,
        cancelled: list[OrderCancelled],
        reject_reason: bytes,
        venue_reason: RejectReason | None,
        seq: int = 0,
    ) -> None:
        req_type = (request.extra or {}).get(530, b"7") or b"7"
        parts = [
            b"11=%b\x01" % (request.cl_ord_id or b"NONE"),
            b"37=%b\x01" % (b"MC%d" % seq if seq else self._next_gateway_exec()),
            b"530=%b\x01" % req_type,
        ]
        if venue_reason is not None:
            parts.append(
                b"531=0\x01532=%b\x0125006=%d\x0158=%b\x01"
                % (reject_reason, venue_reason, venue_reason.name.encode())
            )
        else:
            parts.append(b"531=%b\x01533=%d\x01" % (req_type, total))
            listed = cancelled[:_MAX_AFFECTED_LISTED]
            if listed:
                parts.append(b"534=%d\x01" % len(listed))
                for c in listed:
                    parts.append(
                        b"41=%b\x01535=%d\x01"
                        % (c.client_order_id.encode("latin-1") or b"NONE", c.order_id)
                    )
        parts.append(b"60=%b\x01" % format_utc_timestamp(time.time_ns()))
        request.session.send(b"r", b"".join(parts))


def _ord_type(msg: FixMessage) -> OrdType:
    raw = msg.get(40)
    exec_inst = msg.get(18) or b""
    post_only = b"6" in exec_inst.split(b" ")
    take_profit = msg.get(25002) == b"Y"
    if raw == b"2":
        if take_profit:
            raise Refusal(RejectReason.INVALID_ORDER_TYPE, "TakeProfit needs OrdType 3 or 4")
        return OrdType.LIMIT_MAKER if post_only else OrdType.LIMIT
    if post_only:
        raise Refusal(RejectReason.INVALID_ORDER_TYPE, "ExecInst 6 needs OrdType 2")
    if raw == b"1":
        if take_profit:
            raise Refusal(RejectReason.INVALID_ORDER_TYPE, "TakeProfit needs OrdType 3 or 4")
        return OrdType.MARKET
    if raw == b"3":
        return OrdType.TAKE_PROFIT if take_profit else OrdType.STOP_LOSS
    if raw == b"4":
        return OrdType.TAKE_PROFIT_LIMIT if take_profit else OrdType.STOP_LOSS_LIMIT
    raise Refusal(RejectReason.INVALID_ORDER_TYPE)


def _id_number(raw: bytes) -> int:
    """A numeric identifier (Account, OrderID) as an int, or 0 when it is not one: the digits
    are bounded first, so that thousands of them never reach ``int`` (which refuses them)."""
    digits = raw.lstrip(b"0")
    if not raw.isdigit() or len(digits) > _MAX_ID_DIGITS:
        return 0
    return int(digits or b"0")


def _echo_fields(msg: FixMessage) -> dict[int, bytes]:
    """The order's own fields a reject repeats (so the client can match it)."""
    out: dict[int, bytes] = {}
    for tag in (38, 40, 44, 59, 99, 152):
        value = msg.get(tag)
        if value is not None:
            out[tag] = value
    return out


def _text(text: str) -> bytes:
    return text.replace("\x01", " ").encode("latin-1", "replace")[:200]
