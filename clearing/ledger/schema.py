"""The ledger's tables (SQLAlchemy Core). They are created only by the migrations in
``clearing/ledger/migrations``; this module describes them for queries and must stay equal to
what the migrations build.

Amounts are signed integers in the asset's minor units; a posting's amount is positive when the
account receives. ``ledger_balances.balance`` always equals the sum of the account's postings.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

metadata = MetaData()

# Account kinds.
PARTICIPANT = "participant"
FEES = "fees"
WORLD = "world"
ADJUSTMENTS = "adjustments"
CUSTODY_OMNIBUS = "custody_omnibus"
HOT_WALLET = "hot_wallet"
COLD_WALLET = "cold_wallet"
CUSTODY_CHAIN = "custody_chain"  # the custody accounts' outside world (as ``world`` is the rest's)
#: The venue's own accounts (owner 0) and whether each may go below zero.
VENUE_KINDS: dict[str, bool] = {
    FEES: True,
    WORLD: True,
    ADJUSTMENTS: True,
    CUSTODY_OMNIBUS: False,
    HOT_WALLET: False,
    COLD_WALLET: False,
    CUSTODY_CHAIN: True,
}
VENUE_OWNER = 0

# Transaction kinds and posting legs.
TRADE = "trade"
DEPOSIT = "deposit"
WITHDRAWAL = "withdrawal"
ADJUSTMENT = "adjustment"
DEPOSIT_REVERSAL = "deposit_reversal"  # a credited chain deposit a reorganisation dropped
CUSTODY = "custody"  # coins custody moved on a chain (deposit addresses, hot, cold, the chain)
LEG_BASE = "base"
LEG_QUOTE = "quote"
LEG_FEE = "fee"

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(20), nullable=False),
    Column("owner", BigInteger, nullable=False),
    Column("asset", String(16), nullable=False),
    Column("may_go_negative", Boolean, nullable=False),
    UniqueConstraint("kind", "owner", "asset", name="uq_ledger_accounts_kind_owner_asset"),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("seq", BigInteger, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("ref", String(128), nullable=False),
    Column("instrument", String(32), nullable=True),
    Column("price", BigInteger, nullable=True),
    Column("qty", BigInteger, nullable=True),
    Column("buyer", BigInteger, nullable=True),
    Column("seller", BigInteger, nullable=True),
    Column("buyer_is_maker", Boolean, nullable=True),
    Column("withdrawal_id", BigInteger, nullable=True),
    PrimaryKeyConstraint("seq", "idx", name="pk_ledger_transactions"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("seq", BigInteger, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("n", SmallInteger, nullable=False),
    Column("account_id", Integer, nullable=False),
    Column("asset", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("leg", String(12), nullable=False),
    # No primary key, no foreign key, no btree on PostgreSQL: see the migration 0002.
    Index("ix_ledger_postings_seq_brin", "seq", postgresql_using="brin").ddl_if(
        dialect="postgresql"
    ),
    Index("ix_ledger_postings_seq", "seq").ddl_if(dialect="sqlite"),
    Index("ix_ledger_postings_account_seq", "account_id", "seq").ddl_if(dialect="sqlite"),
)

#: The per-account index of the postings: one row per account and projector batch that posted
#: to it, with the batch's first and last seq that did. An account's postings are
#: ``p.account_id = a.account_id AND p.seq BETWEEN a.from_seq AND a.to_seq`` over its rows.
ledger_account_activity = Table(
    "ledger_account_activity",
    metadata,
    Column("account_id", Integer, nullable=False),
    Column("from_seq", BigInteger, nullable=False),
    Column("to_seq", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "from_seq", name="pk_ledger_account_activity"),
)

ledger_balances = Table(
    "ledger_balances",
    metadata,
    Column("account_id", Integer, ForeignKey("ledger_accounts.id"), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
)

ledger_assets = Table(
    "ledger_assets",
    metadata,
    Column("asset", String(16), primary_key=True),
    Column("decimals", Integer, nullable=False),
)

projector_state = Table(
    "projector_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
)
