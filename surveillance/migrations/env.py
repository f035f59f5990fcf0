"""Alembic environment of the alert and case store's migrations.

Run programmatically by ``surveillance.store``, which passes an open connection in
``config.attributes["connection"]``. No logging set-up and no ``alembic.ini``: the caller owns
both. The store keeps its own version table (``surveillance_alembic_version``), so it may share
a PostgreSQL database with the ledger, whose migrations use Alembic's default one.
"""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "surveillance_alembic_version"


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("the surveillance store's migrations need an open connection")
    context.configure(connection=connection, target_metadata=None, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("the surveillance store's migrations run online only")
run_migrations_online()
