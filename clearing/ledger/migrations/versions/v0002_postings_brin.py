"""Postings without a per-row btree: a BRIN index on seq, and ledger_account_activity as the
per-account index.

``ledger_postings`` loses its primary key ``(seq, idx, n)``, its index ``(account_id, seq)`` and
its foreign key to ``ledger_accounts``: each cost a random-access btree probe or insert per
posting row. Uniqueness comes from ``ledger_transactions``' primary key ``(seq, idx)``, written in
the same database transaction as the postings, and from the projector's mark; account ids are
those the projector resolved from ``ledger_accounts`` (reconciliation reports any other). On
PostgreSQL the postings get ``BRIN (seq)`` (they arrive in seq order); SQLite, not the
throughput target, keeps plain indexes on ``(seq)`` and ``(account_id, seq)``.

``ledger_account_activity(account_id, from_seq, to_seq)``: one row per account and batch, the
first and last seq of the batch that posted to it. Existing postings are indexed by groups of
4,096 seqs.

Revision ID: 0002_postings_brin
Revises: 0001_ledger
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_postings_brin"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

_COLUMNS = "seq, idx, n, account_id, asset, amount, leg"
_BACKFILL_SPAN = 4096


def _activity() -> None:
    op.create_table(
        "ledger_account_activity",
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("from_seq", sa.BigInteger, nullable=False),
        sa.Column("to_seq", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("account_id", "from_seq", name="pk_ledger_account_activity"),
    )
    op.execute(
        "INSERT INTO ledger_account_activity (account_id, from_seq, to_seq)"
        " SELECT account_id, MIN(seq), MAX(seq) FROM ledger_postings"
        f" GROUP BY account_id, seq / {_BACKFILL_SPAN}"
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_constraint("pk_ledger_postings", "ledger_postings", type_="primary")
        op.drop_index("ix_ledger_postings_account_seq", table_name="ledger_postings")
        for fk in sa.inspect(bind).get_foreign_keys("ledger_postings"):
            op.drop_constraint(str(fk["name"]), "ledger_postings", type_="foreignkey")
        op.create_index(
            "ix_ledger_postings_seq_brin", "ledger_postings", ["seq"], postgresql_using="brin"
        )
    else:
        # SQLite cannot drop a primary key or a foreign key: the table is made again.
        op.create_table(
            "ledger_postings_v2",
            sa.Column("seq", sa.BigInteger, nullable=False),
            sa.Column("idx", sa.Integer, nullable=False),
            sa.Column("n", sa.SmallInteger, nullable=False),
            sa.Column("account_id", sa.Integer, nullable=False),
            sa.Column("asset", sa.String(16), nullable=False),
            sa.Column("amount", sa.BigInteger, nullable=False),
            sa.Column("leg", sa.String(12), nullable=False),
        )
        op.execute(
            f"INSERT INTO ledger_postings_v2 ({_COLUMNS}) SELECT {_COLUMNS} FROM ledger_postings"
            " ORDER BY seq, idx, n"
        )
        op.drop_table("ledger_postings")
        op.rename_table("ledger_postings_v2", "ledger_postings")
        op.create_index("ix_ledger_postings_seq", "ledger_postings", ["seq"])
        op.create_index("ix_ledger_postings_account_seq", "ledger_postings", ["account_id", "seq"])
    _activity()


def downgrade() -> None:
    op.drop_table("ledger_account_activity")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_index("ix_ledger_postings_seq_brin", table_name="ledger_postings")
        op.create_primary_key("pk_ledger_postings", "ledger_postings", ["seq", "idx", "n"])
        op.create_index("ix_ledger_postings_account_seq", "ledger_postings", ["account_id", "seq"])
        op.create_foreign_key(
            "ledger_postings_account_id_fkey",
            "ledger_postings",
            "ledger_accounts",
            ["account_id"],
            ["id"],
        )
        return
    op.create_table(
        "ledger_postings_v1",
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("n", sa.SmallInteger, nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), nullable=False),
        sa.Column("asset", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("leg", sa.String(12), nullable=False),
        sa.PrimaryKeyConstraint("seq", "idx", "n", name="pk_ledger_postings"),
    )
    op.execute(
        f"INSERT INTO ledger_postings_v1 ({_COLUMNS}) SELECT {_COLUMNS} FROM ledger_postings"
    )
    op.drop_table("ledger_postings")
    op.rename_table("ledger_postings_v1", "ledger_postings")
    op.create_index("ix_ledger_postings_account_seq", "ledger_postings", ["account_id", "seq"])
