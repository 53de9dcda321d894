"""Alembic's entry: runs the revisions on the connection `uythac.adapters.sql.layout` hands over, inside that
connection's transaction (the caller holds the store's lock and commits)."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
