"""What the Binance-dialect door needs of the running venue, as a small interface the
composition root implements (the gateway imports neither the runtime nor clearing).

Failures come back as ``gateway.admin.ports.Unavailable`` (the venue does not run: the door
answers -1016 with a 503) and ``Unjournalable`` (the journal's codec refused a value: -1130).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Protocol, TypeVar

from engine.commands import Command
from engine.core import Core
from engine.events import Event
from engine.types import KycTier

__all__ = ["BatchCallback", "EventCallback", "Money", "RestVenue"]

T = TypeVar("T")
#: ``(seq, ts, events)`` of each durable command, in sequence order.
EventCallback = Callable[[int, int, list[Event]], None]
#: Called once after the commands of a durable batch were published: the core then holds
#: exactly what is durable, until the callback returns.
BatchCallback = Callable[[], None]


class Money(Protocol):
    """The risk stage's balances and fees, read through :meth:`RestVenue.read`."""

    def account_balances(self, account: int) -> dict[str, tuple[int, int]]: ...

    def account_state(self, account: int) -> IntEnum: ...

    def kyc_tier(self, account: int) -> KycTier:
        """The account's KYC tier (tier 0 does not trade)."""

    def commission_ppm(self, account: int) -> tuple[int, int]:
        """The account's maker and taker rates now, in parts per million."""


class RestVenue(Protocol):
    """The running venue, as the REST and WebSocket door uses it."""

    @property
    def core(self) -> Core:
        """The live core: only inside :meth:`read`, :meth:`query` or a batch callback."""

    @property
    def money(self) -> Money | None:
        """The risk stage (None on a matching-only venue)."""

    async def submit(self, cmd: Command) -> list[Event]:
        """Sequence ``cmd``; its events once durable."""

    async def read(self, fn: Callable[[Core], T]) -> T:
        """``fn(core)`` once every command before it is durable."""

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Follow every durable command; the unsubscriber."""

    def subscribe_batches(self, callback: BatchCallback) -> Callable[[], None]:
        """Be called at the end of every durable batch; the unsubscriber."""

    def now_ms(self) -> int:
        """The venue's clock (the sequencer's), in ms since the epoch."""
