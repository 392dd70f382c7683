"""corrections: who confirmed a held correction (a column, not a prefix of the reason), and the
statuses as a closed set (a CHECK constraint beside the application's enum)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Written out, not imported: a migration must keep meaning what it meant when it was written.
STATUSES = ("accepted", "held", "flagged", "duplicate", "rejected")
PREFIX = "confirmed by "


def upgrade() -> None:
    # batch mode: SQLite cannot add a CHECK constraint in place, so Alembic copies the table.
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("confirmed_by", sa.String(200), nullable=True))
        batch.create_check_constraint(
            "ck_corrections_status", sa.column("status").in_(STATUSES))
    corrections = sa.table("corrections", sa.column("status"), sa.column("reason"),
                           sa.column("confirmed_by"))
    # Rows confirmed before this revision said so only in their reason: "confirmed by <who>".
    op.execute(corrections.update()
               .where(corrections.c.status == "accepted",
                      corrections.c.reason.like(PREFIX + "%"))
               .values(confirmed_by=sa.func.substr(corrections.c.reason, len(PREFIX) + 1)))


def downgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.drop_constraint("ck_corrections_status", type_="check")
        batch.drop_column("confirmed_by")
