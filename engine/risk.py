"""The seam where the risk stage (balances and holds) plugs into the core's pipeline.

The core calls the risk stage for every order it is about to accept and every replace it is
about to apply (after the instrument's filters, before matching), and hands it every command's
events afterwards so holds follow fills, cancels and expiries. Commands the core does not know
(deposits, withdrawals...) are offered to it. Everything it does must be deterministic: it is
part of the state machine that the journal replays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from engine.events import Event
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.types import CancelReason, RejectReason

#: ``cancel(account, reason, out)``: cancel every open order of the account now, appending the
#: events to ``out`` (the core hands it to the risk stage, which uses it to freeze an account).
CancelAccountOrders = Callable[[int, CancelReason, list[Event]], None]
#: ``reference(symbol)``: the instrument's reference price in ticks as the core knows it now
#: (the last trade or the operator's reference, whichever came last, else the configured one;
#: 0 when there is none or no such instrument). The risk stage values assets with it.
ReferencePrice = Callable[[str], int]
#: ``now()``: the sequencer time (ns) of the command being applied, for rules by time of day
#: that a check must judge before the command's events exist (the order-to-trade ratio's day).
CommandTime = Callable[[], int]


class RiskStage(Protocol):
    def attach(
        self,
        cancel_account_orders: CancelAccountOrders,
        reference_price: ReferencePrice,
        now: CommandTime,
    ) -> None:
        """Called once by the core that the risk stage is plugged into."""
        ...

    def check_new_order(self, order: Order, spec: InstrumentSpec, band_limit: int) -> RejectReason:
        """NONE to accept (and take the hold), else the reason to reject. ``band_limit`` is the
        worst price a market order may reach (0 when there is no reference price)."""
        ...

    def check_replace(
        self, order: Order, new_price: int, new_qty: int, new_stop: int, spec: InstrumentSpec
    ) -> RejectReason:
        """NONE if the account can hold what the order would hold after the replace (``new_qty``
        is the new total; ``new_stop`` the stop price it would have)."""
        ...

    def market_cap(self, order: Order) -> int:
        """The worst price a market order may trade at that its hold still covers (0: no
        limit). The core never lets a market order trade beyond it, nor beyond the band: a
        stop-market order triggered by a price gap stops where its hold ends."""
        ...

    def apply_events(self, seq: int, ts: int, events: list[Event]) -> None:
        """Follow the command's events (fills, cancels, expiries, replaces); may append its
        own events at the end of the list."""
        ...

    def handle_command(self, command: object, out: list[Event]) -> bool:
        """Apply a command the core does not know; False if the risk stage does not know it."""
        ...

    def check_invariants(self, open_orders: list[Order]) -> list[str]:
        """What does not add up in the stage's books given the core's open orders, one
        sentence per finding (``Core.check_invariants``); never called per command."""
        ...

    def snapshot_state(self) -> object:
        """A marshal-able value (ints, strs, tuples, lists) in a deterministic order."""
        ...

    def restore_state(self, state: object) -> None: ...


class WithdrawalLimits(Protocol):
    """What custody's withdrawal flow asks the risk stage before it queues a payout (custody
    imports the engine only; the composition root hands it the running venue's risk stage)."""

    def may_withdraw(self, account: int, asset: str, amount: int, ts: int) -> str:
        """ "" if the account's KYC tier lets it withdraw ``amount`` minor units of ``asset`` at
        sequencer time ``ts``, else why not. Changes nothing: the ``Withdraw`` command is
        checked again, deterministically, when it is sequenced."""
        ...
