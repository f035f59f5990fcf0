"""The venue's FIX values for the engine's enumerations (fix_specs/README.md, sections 3 and 5).

One table per enumeration, used both ways by the order entry application and checked against
the README and the dictionary by ``tests/test_fix_specs.py``. Refusals map to FIX in the edge
every door shares (``gateway.edge.refusals.FIX_REASONS``).
"""

from __future__ import annotations

from engine.types import CancelReason, OrderStatus, OrdType, TimeInForce

__all__ = [
    "CANCEL_REASONS",
    "ORD_STATUS",
    "ORD_TYPES",
    "TIME_IN_FORCE",
]

#: engine OrdType -> (OrdType 40, ExecInst 18, TakeProfit 25002)
ORD_TYPES: dict[OrdType, tuple[str, str, str]] = {
    OrdType.LIMIT: ("2", "", ""),
    OrdType.MARKET: ("1", "", ""),
    OrdType.STOP_LOSS: ("3", "", ""),
    OrdType.STOP_LOSS_LIMIT: ("4", "", ""),
    OrdType.TAKE_PROFIT: ("3", "", "Y"),
    OrdType.TAKE_PROFIT_LIMIT: ("4", "", "Y"),
    OrdType.LIMIT_MAKER: ("2", "6", ""),
}
TIME_IN_FORCE: dict[TimeInForce, str] = {
    TimeInForce.GTC: "1",
    TimeInForce.IOC: "3",
    TimeInForce.FOK: "4",
    TimeInForce.GTD: "6",
    TimeInForce.DAY: "0",
}
ORD_STATUS: dict[OrderStatus, str] = {
    OrderStatus.NEW: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.CANCELLED: "4",
    OrderStatus.EXPIRED: "C",
    OrderStatus.REJECTED: "8",
    OrderStatus.PENDING_TRIGGER: "0",
}
#: engine CancelReason -> ExecType 150 (and OrdStatus 39, the same character) of the report.
CANCEL_REASONS: dict[CancelReason, str] = {
    CancelReason.USER: "4",
    CancelReason.MASS_CANCEL: "4",
    CancelReason.KILL_SWITCH: "4",
    CancelReason.OPERATOR: "4",
    CancelReason.SELF_TRADE: "C",
    CancelReason.IOC_REMAINDER: "C",
    CancelReason.FOK_NOT_FILLED: "C",
    CancelReason.GTD_EXPIRED: "C",
    CancelReason.DAY_EXPIRED: "C",
    CancelReason.MARKET_PROTECTION: "C",
    CancelReason.NO_LIQUIDITY: "C",
    CancelReason.TRIGGERED_OUTSIDE_BAND: "C",
    CancelReason.DISCONNECT: "4",
    CancelReason.ACCOUNT_FROZEN: "4",
    CancelReason.KYC_TIER: "4",
}
