"""Nonces for one sending address: handed out in order, never reused, never skipped.

The rule, across crashes:

1. ``reserve()`` saves "next = n + 1" through the store *before* it returns ``n``; a nonce once
   handed out is never handed out again for another transaction after a restart.
2. The caller signs with ``n`` and records the signed bytes durably (its outbox) *before*
   broadcasting; after a restart it rebroadcasts the recorded bytes, never re-signs: the same
   hash, which the node accepts or reports "already known".
3. ``begin(pending, signed)`` at start takes the chain's pending count and the nonces the
   outbox holds signed bytes for. Nonces in [pending, stored next) with no recorded bytes were
   reserved but died before signing: they are handed out again first, lowest first, so the
   sequence has no hole (a hole would stall every later transaction of the address).

Hence never reused (1, 2) and never skipped (3).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class NonceStore(Protocol):
    """Where the next nonce of one address survives a restart (a row, a file)."""

    def load(self) -> int | None:
        """The saved next nonce, None if never saved."""
        ...

    def save(self, next_nonce: int) -> None:
        """Durably record the next nonce (return only once it is durable)."""
        ...


class NonceManager:
    """Hands out the nonces of one address; single-threaded (one asyncio loop)."""

    def __init__(self, store: NonceStore) -> None:
        self._store = store
        self._next: int | None = None
        self._refill: list[int] = []

    def begin(self, pending_count: int, signed: Collection[int] = ()) -> list[int]:
        """Start from the chain's pending count and the outbox's signed nonces; return the
        nonces at or above the chain's count whose recorded bytes must be rebroadcast."""
        if pending_count < 0:
            raise ValueError("negative pending count")
        stored = self._store.load()
        nxt = max(pending_count, stored if stored is not None else 0)
        self._refill = [n for n in range(pending_count, nxt) if n not in signed]
        self._next = nxt
        self._store.save(nxt)
        return sorted(n for n in signed if pending_count <= n < nxt)

    @property
    def started(self) -> bool:
        return self._next is not None

    def peek(self) -> int:
        """The nonce ``reserve`` would hand out now."""
        if self._next is None:
            raise RuntimeError("begin() first")
        return self._refill[0] if self._refill else self._next

    def reserve(self) -> int:
        """The next nonce to sign with, saved as used before it is returned."""
        if self._next is None:
            raise RuntimeError("begin() first")
        if self._refill:
            return self._refill.pop(0)
        nonce = self._next
        self._store.save(nonce + 1)
        self._next = nonce + 1
        return nonce
