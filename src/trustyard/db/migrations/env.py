"""Alembic environment: runs migrations on the connection trustyard hands over (never a global engine)."""

from __future__ import annotations

from alembic import context

from trustyard.db.models import metadata

connection = context.config.attributes["connection"]
# transactional_ddl: SQLite can roll back DDL, and Alembic would otherwise commit after every revision,
# releasing the write lock between revisions so that a second process starting at the same moment
# re-runs a revision the first one already applied ("table ... already exists").
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
