"""The alert and case store's Alembic migrations (run by ``surveillance.store`` at open)."""
