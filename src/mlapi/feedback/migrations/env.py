"""Alembic environment: run by `mlapi feedback migrate` and at the service's start (online only)."""

from alembic import context
from sqlalchemy import create_engine

from mlapi.feedback.db import Base

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
