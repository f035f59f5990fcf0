"""The ledger's Alembic migrations (run by ``clearing.ledger.migrate``)."""
