"""What the admin API needs of the running venue and of its ledger, as small interfaces the
composition root implements (the gateway imports neither the runtime nor clearing).

The implementations translate their own failures into :class:`Unavailable` (the venue is not
running, the ledger cannot be read: 503) and :class:`Unjournalable` (the journal's codec refused
the command: 400), so the admin API answers every failure with ``{"code", "msg"}``.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from enum import IntEnum
from typing import Any, Protocol, TypeVar

from engine.commands import Command
from engine.core import Core
from engine.events import Event
from engine.types import KycTier
from gateway.edge.orders import OrderViews
from gateway.rest.keys import ApiKey

T = TypeVar("T")


class Unavailable(Exception):
    """The venue or its ledger cannot serve the request now (503); nothing was done."""


class Unjournalable(ValueError):
    """The command cannot be journaled (a field out of range): nothing was done (400)."""


class Balances(Protocol):
    """The risk stage's balances, read through :meth:`AdminVenue.read`."""

    def account_balances(self, account: int) -> dict[str, tuple[int, int]]: ...

    def account_state(self, account: int) -> IntEnum: ...

    def kyc_tier(self, account: int) -> KycTier: ...


class AdminVenue(Protocol):
    """The running venue, as the admin API uses it."""

    @property
    def core(self) -> Core:
        """The live core: only to find the order a replace names (never to show state)."""

    @property
    def balances(self) -> Balances | None:
        """The risk stage (None on a matching-only venue)."""

    async def submit(self, cmd: Command) -> list[Event]:
        """Sequence ``cmd``; its events once durable."""

    async def read(self, fn: Callable[[Core], T]) -> T:
        """``fn(core)`` once every command before it is durable."""

    def status(self) -> dict[str, Any]:
        """The venue's state, read through :meth:`read`."""

    @property
    def orders(self) -> OrderViews:
        """Every order as the doors show it, fed durable events: read through :meth:`read`."""

    @property
    def unpriced(self) -> Container[int]:
        """Open orders whose fills came before :attr:`orders` started following the venue:
        their average price and quote quantity are not known exactly, and not shown."""

    def close(self) -> None:
        """Stop feeding :attr:`orders` (the admin API stops)."""


class AdminLedger(Protocol):
    """The ledger settlement keeps, once settlement runs."""

    def status(self) -> dict[str, Any]:
        """How far settlement is, and the last reconciliation."""

    async def reconcile(self, wait_s: int) -> dict[str, Any]:
        """Compare the ledger with the core as of now, waiting up to ``wait_s`` for the ledger
        to reach it; the report. :class:`Unavailable` when the ledger cannot be read."""


class AdminKeys(Protocol):
    """The venue's API key store (``gateway.rest.keys.KeyStore``, shared with the REST door).
    Each action is durable (appended and fsynced) when it returns, and is its own audit record:
    ``by`` names who did it. Bad input raises ``KeyStoreError``; a store that cannot be written
    raises ``KeyStoreError`` or ``OSError``."""

    def create_hmac(
        self, account: int, permissions: Iterable[str], label: str, ips: Iterable[str], by: str
    ) -> tuple[ApiKey, str]: ...

    def create_ed25519(
        self,
        account: int,
        permissions: Iterable[str],
        label: str,
        ips: Iterable[str],
        public_key_pem: str,
        by: str,
    ) -> ApiKey: ...

    def revoke(self, api_key: str, by: str) -> ApiKey: ...

    def get(self, api_key: str) -> ApiKey | None: ...

    def for_account(self, account: int) -> list[ApiKey]: ...


class Probes(Protocol):
    """What monitoring reads on the admin port, without a token: the metrics and whether the
    venue is ready. Both answer at once from what the process holds (no query of the core)."""

    def metrics(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and their content type."""
        ...

    def not_ready(self) -> str:
        """Why the venue cannot take orders now (not recovered, a door not listening, not
        accepting commands); empty when it is ready."""
        ...


class AdminFix(Protocol):
    """The FIX acceptor's sessions added at run time (``venue.fix.FixGateway``)."""

    provisioned: Any  # gateway.fix.provisioned.ProvisionedSessions | None

    def configured(self) -> list[str]: ...

    async def add_session(self, cfg: Any, by: str) -> Any: ...

    def disable_session(self, target: str, by: str) -> Any: ...
