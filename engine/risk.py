"""The seam where the risk stage (balances and holds) plugs into the core's pipeline.

The core calls the risk stage for every order it is about to accept and every replace it is
about to apply (after the instrument's filters, before matching), and hands it every command's
events afterwards so holds follow fills, cancels and expiries. Commands the core does not know
(deposits, withdrawals...) are offered to it. Everything it does must be deterministic: it is
part of the state machine that the journal replays.
"""

from __future__ import annotations

from typing import Protocol

from engine.events import Event
from engine.instrument import InstrumentSpec
from engine.order import Order
from engine.types import RejectReason


class RiskStage(Protocol):
    def check_new_order(self, order: Order, spec: InstrumentSpec, band_limit: int) -> RejectReason:
        """NONE to accept (and take the hold), else the reason to reject. ``band_limit`` is the
        worst price a market order may reach (0 when there is no reference price)."""
        ...

    def check_replace(
        self, order: Order, new_price: int, new_qty: int, spec: InstrumentSpec
    ) -> RejectReason: ...

    def apply_events(self, seq: int, events: list[Event]) -> None: ...

    def handle_command(self, command: object, out: list[Event]) -> bool:
        """Apply a command the core does not know; False if the risk stage does not know it."""
        ...

    def snapshot_state(self) -> object:
        """A marshal-able value (ints, strs, tuples, lists) in a deterministic order."""
        ...

    def restore_state(self, state: object) -> None: ...
