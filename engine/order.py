"""The live order: the mutable record the core keeps for every order that is resting on a book or
waiting in a stop book.

It is also a node of its price level's doubly linked list (``prev``/``next``), so that a cancel
removes it in O(1) without searching the level. Plain typed attributes keep it small and let
mypyc compile it to a native struct. The fields most orders leave at zero (stop price, iceberg
display, expiry, quote amount) live in an ``OrderExt`` made only for the orders that use them:
a plain resting limit order is 24 bytes smaller, which counts with millions of them.
"""

from __future__ import annotations

from typing import Final

from engine.types import OrderStatus, OrdType, Side, StpMode, TimeInForce


class OrderExt:
    """The rarely used fields of an order (all zero when there is no ``OrderExt``)."""

    __slots__ = ("display_qty", "expire_time", "quote_cum", "quote_qty", "stop_price")

    def __init__(self, stop_price: int, quote_qty: int, display_qty: int, expire_time: int) -> None:
        self.stop_price = stop_price
        self.quote_qty = quote_qty  # for a market order by quote amount: what is left to spend
        self.quote_cum = 0  # and the lots it bought so far
        self.display_qty = display_qty
        self.expire_time = expire_time


class Order:
    __slots__ = (
        "account",
        "client_order_id",
        "ext",
        "instrument",
        "leaves",
        "next",
        "ord_type",
        "order_id",
        "prev",
        "price",
        "qty",
        "session",
        "side",
        "status",
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
        self.ext: OrderExt | None = None
        if stop_price or quote_qty or display_qty or expire_time:
            self.ext = OrderExt(stop_price, quote_qty, display_qty, expire_time)
        self.visible = display_qty if 0 < display_qty < qty else qty
        self.stp_mode = stp_mode
        self.session = session
        self.status = OrderStatus.NEW
        self.prev: Order | None = None
        self.next: Order | None = None

    @property
    def cum_qty(self) -> int:
        """Filled so far. A live order always has ``qty == cum_qty + leaves`` (DECREMENT takes
        off both), so it is not stored; an order by quote amount (``qty`` 0) counts its lots in
        its extension. Read it before a close sets ``leaves`` to 0."""
        if self.qty:
            return self.qty - self.leaves
        ext = self.ext
        return ext.quote_cum if ext is not None else 0

    @property
    def stop_price(self) -> int:
        ext = self.ext
        return ext.stop_price if ext is not None else 0

    @stop_price.setter
    def stop_price(self, value: int) -> None:
        self._ext_for(value).stop_price = value

    @property
    def quote_qty(self) -> int:
        ext = self.ext
        return ext.quote_qty if ext is not None else 0

    @quote_qty.setter
    def quote_qty(self, value: int) -> None:
        self._ext_for(value).quote_qty = value

    @property
    def display_qty(self) -> int:
        ext = self.ext
        return ext.display_qty if ext is not None else 0

    @display_qty.setter
    def display_qty(self, value: int) -> None:
        self._ext_for(value).display_qty = value

    @property
    def expire_time(self) -> int:
        ext = self.ext
        return ext.expire_time if ext is not None else 0

    @expire_time.setter
    def expire_time(self, value: int) -> None:
        self._ext_for(value).expire_time = value

    def _ext_for(self, value: int) -> OrderExt:
        """The extension to write ``value`` into; a zero into no extension goes to a scratch
        one, so that setting a field to zero never allocates."""
        ext = self.ext
        if ext is None:
            if not value:
                return _SCRATCH
            ext = self.ext = OrderExt(0, 0, 0, 0)
        return ext

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
        if o.cum_qty != int(t[9]):
            raise ValueError(f"order {o.order_id}: filled {t[9]} does not match qty - leaves")
        o.visible = int(t[13])
        o.status = _STATUSES[int(t[17])]
        return o


_SCRATCH: Final = OrderExt(0, 0, 0, 0)  # absorbs zero writes to orders without an extension
_SIDES: Final = {int(m): m for m in Side}
_ORD_TYPES: Final = {int(m): m for m in OrdType}
_TIFS: Final = {int(m): m for m in TimeInForce}
_STP_MODES: Final = {int(m): m for m in StpMode}
_STATUSES: Final = {int(m): m for m in OrderStatus}
