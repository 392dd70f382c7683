"""corrections: every feedback message the service received, with its verdict

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("feedback_id", sa.String(64), nullable=False, unique=True),
        sa.Column("dedupe_key", sa.String(64), nullable=True, unique=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("label", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("client", sa.String(200), nullable=False, index=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("prediction_id", sa.String(64), nullable=True),
        sa.Column("predicted_label", sa.String(16), nullable=True),
        sa.Column("predicted_confidence", sa.Float, nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kafka_partition", sa.Integer, nullable=True),
        sa.Column("kafka_offset", sa.BigInteger, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("corrections")
