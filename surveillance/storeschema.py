"""The alert and case store's tables (SQLAlchemy Core). They are created only by the migrations
in ``surveillance/migrations``; this module describes them for queries and must stay equal to
what the migrations build (a test compares them).

``surv_alerts.accounts`` and ``.evidence`` are JSON text (the accounts also one row each in
``surv_alert_accounts``, which the account filter reads); times are epoch milliseconds.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

alerts = Table(
    "surv_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False),
    Column("type", String(32), nullable=False),
    Column("symbol", String(32), nullable=False),
    Column("accounts", Text, nullable=False),
    Column("from_ms", BigInteger, nullable=False),
    Column("to_ms", BigInteger, nullable=False),
    Column("score", Float, nullable=False),
    Column("summary", Text, nullable=False),
    Column("evidence", Text, nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("state", String(12), nullable=False),
    Column("count", Integer, nullable=False),
    Column("case_id", Integer, nullable=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    UniqueConstraint("key", name="uq_surv_alerts_key"),
    Index("ix_surv_alerts_updated", "updated_ms", "id"),
    Index("ix_surv_alerts_type", "type"),
    Index("ix_surv_alerts_symbol", "symbol"),
    Index("ix_surv_alerts_state", "state"),
)

alert_accounts = Table(
    "surv_alert_accounts",
    metadata,
    Column("alert_id", Integer, ForeignKey("surv_alerts.id"), nullable=False),
    Column("account", BigInteger, nullable=False),
    PrimaryKeyConstraint("alert_id", "account", name="pk_surv_alert_accounts"),
    Index("ix_surv_alert_accounts_account", "account"),
)

cases = Table(
    "surv_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("title", String(200), nullable=False),
    Column("state", String(12), nullable=False),
    Column("operator", String(64), nullable=False),
    Column("disposition", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("closed_by", String(64), nullable=False),
    Column("closed_ms", BigInteger, nullable=True),
    Index("ix_surv_cases_state", "state"),
)

case_alerts = Table(
    "surv_case_alerts",
    metadata,
    Column("case_id", Integer, ForeignKey("surv_cases.id"), nullable=False),
    Column("alert_id", Integer, ForeignKey("surv_alerts.id"), nullable=False),
    Column("snapshot", Text, nullable=True),
    PrimaryKeyConstraint("case_id", "alert_id", name="pk_surv_case_alerts"),
)

case_history = Table(
    "surv_case_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("surv_cases.id"), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_surv_case_history_case", "case_id", "id"),
)

case_comments = Table(
    "surv_case_comments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("surv_cases.id"), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("author", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_surv_case_comments_case", "case_id", "id"),
)

case_attachments = Table(
    "surv_case_attachments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("surv_cases.id"), nullable=False),
    Column("time_ms", BigInteger, nullable=False),
    Column("author", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("content_type", String(100), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_surv_case_attachments_case", "case_id", "id"),
)
