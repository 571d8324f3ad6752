"""Alembic migrations of the upload service's schema (run by :func:`reporter.server.storage.migrate`)."""
