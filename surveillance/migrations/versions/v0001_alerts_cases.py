"""Alerts (one row per behaviour, by key) and the accounts they name; cases, the alerts they
hold, their history, comments and attachments.

Revision ID: 0001_alerts_cases
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_alerts_cases"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "surv_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("accounts", sa.Text, nullable=False),
        sa.Column("from_ms", sa.BigInteger, nullable=False),
        sa.Column("to_ms", sa.BigInteger, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("case_id", sa.Integer, nullable=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("key", name="uq_surv_alerts_key"),
    )
    op.create_index("ix_surv_alerts_updated", "surv_alerts", ["updated_ms", "id"])
    op.create_index("ix_surv_alerts_type", "surv_alerts", ["type"])
    op.create_index("ix_surv_alerts_symbol", "surv_alerts", ["symbol"])
    op.create_index("ix_surv_alerts_state", "surv_alerts", ["state"])
    op.create_table(
        "surv_alert_accounts",
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("surv_alerts.id"), nullable=False),
        sa.Column("account", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "account", name="pk_surv_alert_accounts"),
    )
    op.create_index("ix_surv_alert_accounts_account", "surv_alert_accounts", ["account"])
    op.create_table(
        "surv_cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("closed_by", sa.String(64), nullable=False),
        sa.Column("closed_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_surv_cases_state", "surv_cases", ["state"])
    op.create_table(
        "surv_case_alerts",
        sa.Column("case_id", sa.Integer, sa.ForeignKey("surv_cases.id"), nullable=False),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("surv_alerts.id"), nullable=False),
        # the alert as the case closed on it (JSON); null while the case is open
        sa.Column("snapshot", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("case_id", "alert_id", name="pk_surv_case_alerts"),
    )
    op.create_table(
        "surv_case_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("surv_cases.id"), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_surv_case_history_case", "surv_case_history", ["case_id", "id"])
    op.create_table(
        "surv_case_comments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("surv_cases.id"), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_surv_case_comments_case", "surv_case_comments", ["case_id", "id"])
    op.create_table(
        "surv_case_attachments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer, sa.ForeignKey("surv_cases.id"), nullable=False),
        sa.Column("time_ms", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_surv_case_attachments_case", "surv_case_attachments", ["case_id", "id"])


def downgrade() -> None:
    for table in (
        "surv_case_attachments",
        "surv_case_comments",
        "surv_case_history",
        "surv_case_alerts",
        "surv_cases",
        "surv_alert_accounts",
        "surv_alerts",
    ):
        op.drop_table(table)
