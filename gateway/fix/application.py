"""The venue's FIX application: what each session type may do, and where its messages go.

Behind every :class:`~gateway.fix.session.Session` of a venue (``[fix] application = "venue"``):

- order entry sessions send D, F, G, H, q, AF and x (to :class:`~gateway.fix.orders.OrderEntry`);
- drop copy sessions only receive copies of ExecutionReports; they may send x;
- market data sessions send V and x (to the market data handler).

Anything else a session type may not send is answered with BusinessMessageReject 380=6 (not
authorized). Logout or disconnect of an order entry session with cancel-on-disconnect cancels
the orders it entered; the Logon's ``CancelOnDisconnect(25004)`` overrides the configuration
for that connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from engine.commands import Command
from engine.events import Event
from gateway.fix.codec import FixMessage
from gateway.fix.orders import OrderEntry, SessionProfile
from gateway.fix.session import BusinessRejectReason, Session

__all__ = ["MarketData", "VenueApplication"]

log = logging.getLogger("gateway.fix.application")

_ORDER_ENTRY_TYPES = frozenset({b"D", b"F", b"G", b"H", b"q", b"AF"})
#: Order entry requests that only read: answered from durable state (``_read``).
_READS = frozenset({b"H", b"AF"})


class MarketData(Protocol):
    """The market data and reference data handler (:mod:`gateway.fix.marketdata`)."""

    def security_list(self, session: Session, msg: FixMessage) -> None: ...

    def market_data_request(
        self, session: Session, msg: FixMessage, max_subscriptions: int
    ) -> None: ...

    def on_events(self, seq: int, ts: int, events: Sequence[Event]) -> None: ...

    def session_closed(self, session: Session) -> None: ...


class VenueApplication:
    """Dispatches each session's application messages by session type."""

    def __init__(
        self,
        profiles: Mapping[str, SessionProfile],
        orders: OrderEntry,
        market_data: MarketData | None,
    ) -> None:
        self.profiles = profiles
        self.orders = orders
        self.market_data = market_data

    def on_logon(self, session: Session, logon: FixMessage) -> str | None:
        profile = self.profiles.get(session.config.key)
        if profile is None:
            return "session not configured"
        override = logon.get(25004)
        if override is not None and profile.kind != "order_entry":
            return "CancelOnDisconnect (25004) applies to order entry sessions only"
        profile.cancel_on_disconnect_now = None if override is None else override == b"Y"
        return None

    def on_logout(self, session: Session) -> None:
        profile = self.profiles.get(session.config.key)
        if profile is None:
            return
        if self.market_data is not None:
            self.market_data.session_closed(session)
        cancel = profile.cancel_on_disconnect_now
        if cancel is None:
            cancel = profile.cancel_on_disconnect
        profile.cancel_on_disconnect_now = None
        if cancel and profile.kind == "order_entry":
            log.info("%s: cancel-on-disconnect", session.config.key)
            self.orders.cancel_session_orders(session.config.key)

    def from_app(self, session: Session, msg: FixMessage) -> None:
        profile = self.profiles[session.config.key]
        msg_type = msg.msg_type
        market_data = self.market_data
        if msg_type == b"x":
            if market_data is None:
                session.business_reject(
                    msg, BusinessRejectReason.APPLICATION_NOT_AVAILABLE, "no reference data"
                )
            else:
                self._read(session, msg, lambda: market_data.security_list(session, msg))
        elif msg_type in _ORDER_ENTRY_TYPES:
            if profile.kind != "order_entry":
                self._not_authorized(session, msg, profile)
            elif msg_type in _READS:
                self._read(session, msg, lambda: self.orders.handle(session, profile, msg))
            else:
                self.orders.handle(session, profile, msg)
        elif msg_type == b"V":
            if profile.kind != "market_data" or market_data is None:
                self._not_authorized(session, msg, profile)
            else:
                limit = profile.max_md_subscriptions
                self._read(
                    session, msg, lambda: market_data.market_data_request(session, msg, limit)
                )
        else:
            session.business_reject(
                msg, BusinessRejectReason.UNSUPPORTED_MESSAGE_TYPE, "Unsupported Message Type"
            )

    def _read(self, session: Session, msg: FixMessage, answer: Callable[[], None]) -> None:
        """Answer a request that shows state (status, mass status, market data and reference
        data) once the commands posted before it are durable (``Venue.query``): nothing that
        a crash could erase is ever shown, and a status request sees the orders its session
        sent before it."""
        try:
            self.orders.venue.query(lambda core: answer())
        except Exception as exc:  # the venue is stopping or failed
            log.warning("cannot answer %s: %s", session.config.key, exc)
            session.business_reject(
                msg,
                BusinessRejectReason.APPLICATION_NOT_AVAILABLE,
                "the venue is not available",
                msg.get(11),
            )

    @staticmethod
    def _not_authorized(session: Session, msg: FixMessage, profile: SessionProfile) -> None:
        session.business_reject(
            msg,
            BusinessRejectReason.NOT_AUTHORIZED,
            f"{msg.msg_type.decode('latin-1')} is not allowed on a {profile.kind} session",
            msg.get(11),
        )

    def on_command(self, cmd: Command, events: list[Event] | None) -> None:
        """Every durable command (the venue's command subscriber)."""
        self.orders.on_command(cmd, events)
        if events and self.market_data is not None:
            self.market_data.on_events(cmd.seq, cmd.ts, events)
