"""Clearing's events: what the risk stage did with each command, in minor units of each asset.

The risk stage appends them to the command's event list after the engine's own events. The
ledger is built from these alone (``TradeSettled`` for every ``Trade``, and the money movements),
so settlement needs no instrument or fee configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from clearing.commands import AccountState


class ClearingReject(IntEnum):
    """Why a clearing command was refused. Stable numbers."""

    UNKNOWN_ASSET = 1
    INVALID_AMOUNT = 2
    INSUFFICIENT_BALANCE = 3
    ACCOUNT_NOT_ACTIVE = 4
    ACCOUNT_CLOSED = 5
    UNKNOWN_WITHDRAWAL = 6
    DUPLICATE_WITHDRAWAL = 7
    BALANCE_NOT_ZERO = 8  # an account closes only when it holds nothing
    UNKNOWN_FEE_SCHEDULE = 9
    INVALID_FEES = 10
    INVALID_ACCOUNT = 11
    NO_CHANGE = 12


@dataclass(slots=True)
class TradeSettled:
    """The money of one ``Trade``: the buyer receives ``base_amount`` of the base asset and pays
    ``quote_amount`` of the quote asset; the seller the reverse. Each side's fee is in its
    ``*_fee_asset``; a fee is positive when paid to the venue and negative for a rebate."""

    trade_id: int
    instrument: str
    price: int  # ticks
    qty: int  # lots
    buyer: int
    seller: int
    buyer_is_maker: bool
    base_asset: str
    quote_asset: str
    base_amount: int
    quote_amount: int
    buyer_fee_asset: str
    buyer_fee: int
    seller_fee_asset: str
    seller_fee: int


@dataclass(slots=True)
class Deposited:
    account: int
    asset: str
    amount: int
    ref: str


@dataclass(slots=True)
class WithdrawalEvent:
    """A step of withdrawal ``withdrawal_id`` of ``amount``: the three share their fields."""

    withdrawal_id: int
    account: int
    asset: str
    amount: int
    ref: str


@dataclass(slots=True)
class WithdrawalHeld(WithdrawalEvent):
    """The amount stopped being available: locked until confirmed or released."""


@dataclass(slots=True)
class WithdrawalConfirmed(WithdrawalEvent):
    """The amount left the venue (``ref``: the payout's on-chain transaction)."""


@dataclass(slots=True)
class WithdrawalReleased(WithdrawalEvent):
    """The hold ended without a payout; the amount is available again."""


@dataclass(slots=True)
class BalanceAdjusted:
    account: int
    asset: str
    amount: int  # signed
    ref: str


@dataclass(slots=True)
class AccountStateChanged:
    account: int
    state: AccountState


@dataclass(slots=True)
class FeeScheduleSet:
    account: int
    schedule: str


@dataclass(slots=True)
class FeesConfigured:
    spec: str


@dataclass(slots=True)
class ClearingRejected:
    """A clearing command refused; nothing changed. ``command`` is its class name."""

    command: str
    account: int
    reason: ClearingReject
    detail: str
