"""One refusal taxonomy for every door, and how each door says it.

A request is refused for one reason of ``engine.types.RejectReason``, whether the edge refused
it (a decimal off the tick, a malformed client order id) or the core did (insufficient balance,
a halted instrument). The field it concerns refines what a Binance client is told (an off-grid
``quoteOrderQty`` is a precision error, an off-grid ``price`` a PRICE_FILTER failure). FIX doors
send the OrdRejReason / CxlRejReason below with the reason's name in Text and its number in
VenueRejectReason (25006); Binance-dialect doors send ``{"code", "msg"}`` with the exact texts
Binance clients match on.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.types import RejectReason

__all__ = ["FIX_REASONS", "BinanceError", "Refusal", "binance_error"]


class Refusal(Exception):
    """A request the edge refuses before the core sees it: nothing was posted. ``field`` names
    the request's field at fault in the door-neutral vocabulary (``quantity``, ``price``,
    ``stopPrice``, ``quoteOrderQty``, ``icebergQty``, ``clientOrderId``...), or is empty."""

    #: what was wrong with the field's value, when it was its form or size
    OFF_STEP = "off_step"  # not a whole number of ticks, lots or minor units
    MALFORMED = "malformed"  # not a plain decimal
    ZERO = "zero"  # 0 where only a positive value makes sense

    def __init__(
        self, reason: RejectReason, text: str = "", field: str = "", kind: str = ""
    ) -> None:
        super().__init__(text or reason.name)
        self.reason = reason
        self.text = text or reason.name
        self.field = field
        self.kind = kind


#: engine RejectReason -> (OrdRejReason 103 on an ExecutionReport, CxlRejReason 102 on an
#: OrderCancelReject).
FIX_REASONS: dict[RejectReason, tuple[str, str]] = {
    RejectReason.UNKNOWN_INSTRUMENT: ("1", "1"),
    RejectReason.INSTRUMENT_NOT_OPEN: ("2", "2"),
    RejectReason.INSTRUMENT_HALTED: ("2", "2"),
    RejectReason.KILL_SWITCH: ("0", "2"),
    RejectReason.INVALID_QUANTITY: ("13", "99"),
    RejectReason.QTY_NOT_LOT_MULTIPLE: ("13", "99"),
    RejectReason.PRICE_NOT_TICK_MULTIPLE: ("18", "99"),
    RejectReason.QTY_BELOW_MIN: ("13", "99"),
    RejectReason.QTY_ABOVE_MAX: ("3", "99"),
    RejectReason.NOTIONAL_BELOW_MIN: ("13", "99"),
    RejectReason.PRICE_OUTSIDE_BAND: ("16", "99"),
    RejectReason.INVALID_PRICE: ("11", "99"),
    RejectReason.INVALID_STOP_PRICE: ("11", "99"),
    RejectReason.WOULD_TRIGGER_IMMEDIATELY: ("99", "99"),
    RejectReason.WOULD_TAKE: ("99", "99"),
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: ("6", "6"),
    RejectReason.UNKNOWN_ORDER: ("5", "1"),
    RejectReason.ORDER_NOT_REPLACEABLE: ("99", "99"),
    RejectReason.INVALID_TIME_IN_FORCE: ("11", "99"),
    RejectReason.EXPIRE_TIME_IN_PAST: ("4", "99"),
    RejectReason.INVALID_DISPLAY_QTY: ("11", "99"),
    RejectReason.REPLACE_QTY_NOT_ABOVE_FILLED: ("13", "99"),
    RejectReason.INVALID_ORDER_TYPE: ("11", "99"),
    RejectReason.INVALID_STP_MODE: ("11", "99"),
    RejectReason.INSUFFICIENT_BALANCE: ("3", "99"),
    RejectReason.ACCOUNT_NOT_ACTIVE: ("0", "2"),
    RejectReason.NOT_PERMITTED: ("0", "2"),
    RejectReason.INVALID_COMMAND: ("99", "99"),
    RejectReason.KYC_TIER_NOT_PERMITTED: ("0", "2"),
    RejectReason.OTR_EXCEEDED: ("99", "99"),
}

# Binance's codes and texts (binance-spot-api-docs, errors.md).
_FILTER = -1013
_BAD_PRECISION = -1111
_NEW_ORDER_REJECTED = -2010
_CANCEL_REJECTED = -2011
_ORDER_AMEND_REJECTED = -2038

#: The filter a field's off-grid value fails.
_FIELD_FILTERS = {
    "price": "PRICE_FILTER",
    "stopPrice": "PRICE_FILTER",
    "quantity": "LOT_SIZE",
    "icebergQty": "LOT_SIZE",
}

#: engine RejectReason -> (code, msg) when the field does not say more.
_BINANCE: dict[RejectReason, tuple[int, str]] = {
    RejectReason.UNKNOWN_INSTRUMENT: (-1121, "Invalid symbol."),
    RejectReason.INSTRUMENT_NOT_OPEN: (_NEW_ORDER_REJECTED, "Market is closed."),
    RejectReason.INSTRUMENT_HALTED: (_NEW_ORDER_REJECTED, "Market is closed."),
    RejectReason.KILL_SWITCH: (_NEW_ORDER_REJECTED, "Market is closed."),
    RejectReason.INVALID_QUANTITY: (_FILTER, "Filter failure: LOT_SIZE"),
    RejectReason.QTY_NOT_LOT_MULTIPLE: (_FILTER, "Filter failure: LOT_SIZE"),
    RejectReason.PRICE_NOT_TICK_MULTIPLE: (_FILTER, "Filter failure: PRICE_FILTER"),
    RejectReason.QTY_BELOW_MIN: (_FILTER, "Filter failure: LOT_SIZE"),
    RejectReason.QTY_ABOVE_MAX: (_FILTER, "Filter failure: LOT_SIZE"),
    RejectReason.NOTIONAL_BELOW_MIN: (_FILTER, "Filter failure: NOTIONAL"),
    RejectReason.PRICE_OUTSIDE_BAND: (_FILTER, "Filter failure: PERCENT_PRICE_BY_SIDE"),
    RejectReason.INVALID_PRICE: (_FILTER, "Filter failure: PRICE_FILTER"),
    RejectReason.INVALID_STOP_PRICE: (_FILTER, "Filter failure: PRICE_FILTER"),
    RejectReason.WOULD_TRIGGER_IMMEDIATELY: (
        _NEW_ORDER_REJECTED,
        "Order would trigger immediately.",
    ),
    RejectReason.WOULD_TAKE: (_NEW_ORDER_REJECTED, "Order would immediately match and take."),
    RejectReason.DUPLICATE_CLIENT_ORDER_ID: (_NEW_ORDER_REJECTED, "Duplicate order sent."),
    RejectReason.UNKNOWN_ORDER: (_CANCEL_REJECTED, "Unknown order sent."),
    RejectReason.ORDER_NOT_REPLACEABLE: (_ORDER_AMEND_REJECTED, "Unsupported order combination"),
    RejectReason.INVALID_TIME_IN_FORCE: (-1115, "Invalid timeInForce."),
    RejectReason.EXPIRE_TIME_IN_PAST: (-1130, "Data sent for parameter 'expireTime' is not valid."),
    RejectReason.INVALID_DISPLAY_QTY: (_FILTER, "Filter failure: ICEBERG_PARTS"),
    RejectReason.REPLACE_QTY_NOT_ABOVE_FILLED: (
        _ORDER_AMEND_REJECTED,
        "Order amend (quantity increase) is not supported.",
    ),
    RejectReason.INVALID_ORDER_TYPE: (-1116, "Invalid orderType."),
    RejectReason.INVALID_STP_MODE: (
        -1130,
        "Data sent for parameter 'selfTradePreventionMode' is not valid.",
    ),
    RejectReason.INSUFFICIENT_BALANCE: (
        _NEW_ORDER_REJECTED,
        "Account has insufficient balance for requested action.",
    ),
    RejectReason.ACCOUNT_NOT_ACTIVE: (
        _NEW_ORDER_REJECTED,
        "This account may not place or cancel orders.",
    ),
    RejectReason.NOT_PERMITTED: (_NEW_ORDER_REJECTED, "This action is disabled on this account."),
    RejectReason.INVALID_COMMAND: (-1130, "Invalid data sent for a parameter."),
    RejectReason.KYC_TIER_NOT_PERMITTED: (
        _NEW_ORDER_REJECTED,
        "This account's verification level (KYC tier 0) does not allow trading.",
    ),
    RejectReason.OTR_EXCEEDED: (
        _NEW_ORDER_REJECTED,
        "This account is over the maximum order-to-trade ratio on this symbol today: "
        "new orders and amendments are refused until the next UTC day; cancels are accepted.",
    ),
}


@dataclass(frozen=True, slots=True)
class BinanceError:
    """What a Binance-dialect door answers: HTTP ``status`` and ``{"code", "msg"}``."""

    code: int
    msg: str
    status: int = 400


def binance_error(reason: RejectReason, field: str = "", kind: str = "") -> BinanceError:
    """The Binance answer to a refusal for ``reason`` about ``field`` (``kind``: what was
    wrong with its value, see :class:`Refusal`)."""
    if kind == Refusal.OFF_STEP and field not in _FIELD_FILTERS:
        # an amount or quote quantity with more decimals than its unit
        return BinanceError(_BAD_PRECISION, f"Parameter '{field}' has too much precision.")
    if kind == Refusal.MALFORMED or kind == Refusal.ZERO:
        return BinanceError(-1130, f"Data sent for parameter '{field}' is not valid.")
    if field == "newClientOrderId" or field == "clientOrderId":
        return BinanceError(
            -1100,
            f"Illegal characters found in parameter '{field}'; legal range is "
            "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        )
    if field in _FIELD_FILTERS and reason in (
        RejectReason.QTY_NOT_LOT_MULTIPLE,
        RejectReason.PRICE_NOT_TICK_MULTIPLE,
        RejectReason.INVALID_QUANTITY,
        RejectReason.INVALID_PRICE,
        RejectReason.INVALID_STOP_PRICE,
    ):
        return BinanceError(_FILTER, f"Filter failure: {_FIELD_FILTERS[field]}")
    code, msg = _BINANCE.get(reason, (-1130, "Invalid data sent for a parameter."))
    return BinanceError(code, msg)
