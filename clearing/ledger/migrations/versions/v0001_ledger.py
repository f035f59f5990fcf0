"""The ledger: accounts, transactions, postings, balances, assets and the projector's state.

Revision ID: 0001_ledger
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_ledger"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("owner", sa.BigInteger, nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("may_go_negative", sa.Boolean, nullable=False),
        sa.UniqueConstraint("kind", "owner", "asset", name="uq_ledger_accounts_kind_owner_asset"),
    )
    op.create_table(
        "ledger_transactions",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("instrument", sa.String(32), nullable=True),
        sa.Column("price", sa.BigInteger, nullable=True),
        sa.Column("qty", sa.BigInteger, nullable=True),
        sa.Column("buyer", sa.BigInteger, nullable=True),
        sa.Column("seller", sa.BigInteger, nullable=True),
        sa.Column("buyer_is_maker", sa.Boolean, nullable=True),
        sa.Column("withdrawal_id", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("seq", "idx", name="pk_ledger_transactions"),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("n", sa.SmallInteger, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("leg", sa.String(12), nullable=False),
        sa.PrimaryKeyConstraint("seq", "idx", "n", name="pk_ledger_postings"),
    )
    op.create_index("ix_ledger_postings_account_seq", "ledger_postings", ["account_id", "seq"])
    op.create_table(
        "ledger_balances",
        sa.Column("account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), primary_key=True),
        sa.Column("balance", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "ledger_assets",
        sa.Column("asset", sa.String(16), primary_key=True),
        sa.Column("decimals", sa.Integer, nullable=False),
    )
    op.create_table(
        "projector_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "projector_state",
        "ledger_assets",
        "ledger_balances",
        "ledger_postings",
        "ledger_transactions",
        "ledger_accounts",
    ):
        op.drop_table(table)
