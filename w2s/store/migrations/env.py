"""Alembic environment: runs on the connection that w2s.store.schema passes in `config.attributes`."""

from alembic import context
from sqlmodel import SQLModel

import w2s.store.db  # noqa: F401  (defines the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it; Alembic's batch mode does that for us.
context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
