"""The live order: the mutable record the core keeps for every order that is resting on a book or
waiting in a stop book.

It is also a node of its price level's doubly linked list (``prev``/``next``), so that a cancel
removes it in O(1) without searching the level. Plain typed attributes keep it small and let
mypyc compile it to a native struct.
"""

from __future__ import annotations

from typing import Final

from engine.types import OrderStatus, OrdType, Side, StpMode, TimeInForce


class Order:
    __slots__ = (
        "account",
        "client_order_id",
        "cum_qty",
        "display_qty",
        "expire_time",
        "instrument",
        "leaves",
        "next",
        "ord_type",
        "order_id",
        "prev",
        "price",
        "qty",
        "quote_qty",
        "session",
        "side",
        "status",
        "stop_price",
        "stp_mode",
        "tif",
        "visible",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        instrument: str,
        client_order_id: str,
        side: Side,
        ord_type: OrdType,
        tif: TimeInForce,
        price: int,
        qty: int,
        stop_price: int,
        quote_qty: int,
        display_qty: int,
        expire_time: int,
        stp_mode: StpMode,
        session: str,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.client_order_id = client_order_id
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.price = price
        self.qty = qty
        self.leaves = qty
        self.cum_qty = 0
        self.stop_price = stop_price
        self.quote_qty = quote_qty  # for a market order by quote amount: what is left to spend
        self.display_qty = display_qty
        self.visible = display_qty if 0 < display_qty < qty else qty
        self.expire_time = expire_time
        self.stp_mode = stp_mode
        self.session = session
        self.status = OrderStatus.NEW
        self.prev: Order | None = None
        self.next: Order | None = None

    def __repr__(self) -> str:
        return (
            f"Order(id={self.order_id}, account={self.account}, side={self.side}, "
            f"price={self.price}, qty={self.qty}, leaves={self.leaves}, visible={self.visible})"
        )

    def as_tuple(self) -> tuple[int | str, ...]:
        """Every field that defines the order's state, in a fixed order (snapshots, state hash)."""
        return (
            self.order_id,
            self.account,
            self.client_order_id,
            int(self.side),
            int(self.ord_type),
            int(self.tif),
            self.price,
            self.qty,
            self.leaves,
            self.cum_qty,
            self.stop_price,
            self.quote_qty,
            self.display_qty,
            self.visible,
            self.expire_time,
            int(self.stp_mode),
            self.session,
            int(self.status),
        )

    @staticmethod
    def from_tuple(instrument: str, t: tuple[int | str, ...]) -> Order:
        """Rebuild an order from ``as_tuple`` (restart from a snapshot: millions of calls, so
        enum members come from lookup tables rather than the slow ``Enum(value)`` call)."""
        o = Order(
            int(t[0]),
            int(t[1]),
            instrument,
            str(t[2]),
            _SIDES[int(t[3])],
            _ORD_TYPES[int(t[4])],
            _TIFS[int(t[5])],
            int(t[6]),
            int(t[7]),
            int(t[10]),
            int(t[11]),
            int(t[12]),
            int(t[14]),
            _STP_MODES[int(t[15])],
            str(t[16]),
        )
        o.leaves = int(t[8])
        o.cum_qty = int(t[9])
        o.visible = int(t[13])
        o.status = _STATUSES[int(t[17])]
        return o


_SIDES: Final = {int(m): m for m in Side}
_ORD_TYPES: Final = {int(m): m for m in OrdType}
_TIFS: Final = {int(m): m for m in TimeInForce}
_STP_MODES: Final = {int(m): m for m in StpMode}
_STATUSES: Final = {int(m): m for m in OrderStatus}
