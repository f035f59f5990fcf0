"""What each confirmed chain transaction of custody moved, for the venue's books.

The core keeps custody's accounts beside the participants' (``clearing.risk``): the deposit
addresses (``custody_omnibus``), the ``hot_wallet``, the ``cold_wallet``, and ``custody_chain``,
their outside world. A chain deposit credited moves its amount from the chain to the deposit
addresses inside the core; everything else custody moves is recorded from here, once its
transaction is confirmed, by a ``RecordCustody`` whose ref is the transaction
(``<asset>:<txid>``): the core records a ref once ever and never takes a custody account below
zero, so custody resends freely after a crash.

Amounts are the venue's units: what a transaction carried is rounded down and its network fee
rounded up, so the books never claim more than the chain holds (the difference, under a unit a
transaction, stays on the chain and shows in reconciliation as a small surplus).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from custody.config import from_chain_units
from engine.commands import Origin, RecordCustody
from engine.events import ClearingReject, ClearingRejected, CustodyMoved
from engine.types import Door

__all__ = [
    "CHAIN",
    "COLD",
    "HOT",
    "OMNIBUS",
    "BooksWatch",
    "fee_units",
    "movement_ref",
    "record",
]

log = logging.getLogger("custody.book")

OMNIBUS, HOT, COLD, CHAIN = "custody_omnibus", "hot_wallet", "cold_wallet", "custody_chain"


def movement_ref(asset: str, txid: str, part: str = "") -> str:
    """The ref of what transaction ``txid`` moved of ``asset`` (``part`` tells apart two
    movements of one transaction, such as a refill and the gas the hot wallet paid for it)."""
    return f"{asset}:{txid}" + (f":{part}" if part else "")


def fee_units(amount_chain: int, venue_decimals: int, chain_decimals: int) -> int:
    """A network fee in the venue's units, rounded up."""
    whole, rest = from_chain_units(amount_chain, venue_decimals, chain_decimals)
    return whole + (1 if rest else 0)


async def record(submit: Callable[[Any], Awaitable[list[Any]]], cmd: RecordCustody) -> bool:
    """Send ``cmd``; True once it is recorded (now, or before a crash lost the answer). A
    refusal for any other reason is logged and answers False: the chain moved all the same,
    so the caller goes on, and reconciliation shows the difference."""
    cmd.origin = cmd.origin or Origin(Door.CUSTODY, "custody", cmd.ref[:64])
    events = await submit(cmd)
    if any(isinstance(e, CustodyMoved) for e in events):
        return True
    for e in events:
        if isinstance(e, ClearingRejected):
            if e.reason is ClearingReject.DUPLICATE_MOVEMENT:
                return True
            log.error("custody: the books refused movement %s: %s", cmd.ref, e.detail)
            return False
    log.error("custody: no answer recording movement %s: %s", cmd.ref, events)
    return False


WALLETS = ("hot", "deposits", "cold")


class BooksWatch:
    """The chain holds at least what the books say, wallet by wallet (hot, deposit addresses,
    cold), whenever nothing of the chain is moving: every confirmed move is recorded before its
    batch or sweep is closed, so with none open, less on chain than in the books is coins gone
    (a key used outside the venue, a reorganisation deeper than the records, a chain replaced).
    A wallet counts as short once it is short at two looks in a row: a deposit a
    reorganisation dropped is reversed by the next poll."""

    def __init__(self) -> None:
        self._short: dict[tuple[str, str], int] = {}

    def look(
        self, asset: str, on_chain: Mapping[str, int], books: Mapping[str, int], moving: bool
    ) -> list[tuple[str, int, int]]:
        """(wallet, on chain, in the books), venue units, for each wallet short at this look
        and the one before; nothing is looked at while the chain is ``moving``."""
        if moving:
            return []
        found = []
        for wallet in WALLETS:
            chain, booked = on_chain.get(wallet, 0), books.get(wallet, 0)
            key = (asset, wallet)
            if booked > chain:
                if key in self._short:
                    found.append((wallet, chain, booked))
                self._short[key] = booked - chain
            else:
                self._short.pop(key, None)
        return found
