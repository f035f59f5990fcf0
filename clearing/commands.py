"""Clearing's commands: money entering, leaving and being corrected, account states and fees.

They are sequenced and journaled like the engine's commands (codec tags from 32 up, see
``clearing.codec``), so replaying the journal rebuilds every balance. Amounts are integers in the
asset's minor units (``10**-decimals`` of the asset, as configured in ``[[assets]]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class AccountState(IntEnum):
    """ACTIVE trades and moves money; FROZEN keeps its balances but places no orders and makes
    no withdrawals (its open orders are cancelled when it is frozen); CLOSED holds nothing and
    does nothing (an account closes only when it is empty)."""

    ACTIVE = 1
    FROZEN = 2
    CLOSED = 3


@dataclass(slots=True)
class Deposit:
    """Credit ``amount`` to the account: custody saw the funds arrive (``ref``: the on-chain
    transaction, or the operator's reference)."""

    account: int
    asset: str
    amount: int
    ref: str = ""
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class Withdraw:
    """Hold ``amount`` for withdrawal ``withdrawal_id`` (unique, chosen by the requester): it
    stops being available at once; ``ConfirmWithdrawal`` takes it out of the venue,
    ``ReleaseWithdrawal`` gives it back."""

    account: int
    asset: str
    amount: int
    withdrawal_id: int
    ref: str = ""
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class ConfirmWithdrawal:
    withdrawal_id: int
    ref: str = ""  # the on-chain transaction that paid it out
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class ReleaseWithdrawal:
    withdrawal_id: int
    ref: str = ""  # why it was released (refused, failed on chain...)
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class AdjustBalance:
    """An operator's correction: ``amount`` (signed) to the account's total, against the
    venue's adjustment account; it may not take more than is available."""

    account: int
    asset: str
    amount: int
    ref: str = ""
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class SetAccountState:
    account: int
    state: AccountState
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class SetFeeSchedule:
    """Put the account on a named fee schedule (``""``: back to the default schedule)."""

    account: int
    schedule: str
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class ConfigureFees:
    """The whole fee configuration, as canonical JSON (see ``clearing.fees``). The runtime
    sequences it when the configured fees differ from the ones in force, so that a replay never
    depends on today's configuration file."""

    spec: str
    seq: int = 0
    ts: int = 0


#: Every command clearing adds to the engine's.
ClearingCommand = (
    Deposit
    | Withdraw
    | ConfirmWithdrawal
    | ReleaseWithdrawal
    | AdjustBalance
    | SetAccountState
    | SetFeeSchedule
    | ConfigureFees
)
