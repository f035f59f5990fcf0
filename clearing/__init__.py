"""Clearing: the risk stage and settlement.

Owns the risk stage of the core (balances available and locked, holds taken when an order is
accepted and released as it fills or is cancelled, fees, know-your-customer tiers and their
rolling withdrawal limits), the settlement of events into the
double-entry ledger (SQLAlchemy: SQLite by default, PostgreSQL via psycopg), reconciliation,
statements and reports, and its sections of the configuration file: ``[[assets]]``, ``[fees]``,
``[ledger]`` and ``[kyc]`` (``clearing.config``). The ledger is a projection of the event stream,
idempotent by event sequence number.

May import ``engine`` only. The commands and events it handles (deposits, withdrawals,
adjustments, account states, fees, KYC tiers, ``TradeSettled``) are the engine's vocabulary
(``engine.commands``, ``engine.events``), so every package decodes the journal and builds money
commands without importing clearing. The risk stage is compiled with the
engine's hot modules (``engine/_native.py``) and loads compiled whenever the engine does.
"""

from engine._native import activate_package as _activate

#: True when the compiled risk stage is in use.
NATIVE = _activate("clearing", __path__)
