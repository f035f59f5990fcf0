"""The double-entry ledger: a SQL projection of clearing's events.

Owns the ledger's tables (``schema``, created only through the Alembic migrations kept in
``migrations/``), the rules that turn clearing events into balanced transactions and postings
(``postings``), and the projector that writes them idempotently by command sequence number,
from a live batch or by catching up from the journal (``projector``). Balances are kept in
``ledger_balances`` in the same database transaction as the postings they sum.

Accounts: one ``participant`` account per participant and asset (never below zero), and the
venue's own accounts (owner 0) per asset: ``fees`` (maker rebates may take it below zero),
``world`` (the outside world: deposits come from it), ``adjustments`` (operators' corrections),
and custody's ``custody_omnibus`` (the deposit addresses), ``hot_wallet``, ``cold_wallet``
(never below zero) with ``custody_chain``, their outside world: what the venue holds on the
chains, posted from custody's movements, apart from what it owes.
"""

from clearing.ledger.postings import LedgerError
from clearing.ledger.projector import Projector

__all__ = ["LedgerError", "Projector"]
