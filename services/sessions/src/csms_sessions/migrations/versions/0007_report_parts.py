"""report parts: which seqNos arrived, the last one, repeats

Revision ID: 0007_report_parts
Revises: 0006_remote_start_session
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0007_report_parts"
down_revision = "0006_remote_start_session"
branch_labels = None
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("report_request", schema=SCHEMA) as table:
        table.add_column(sa.Column("seq_nos", sa.JSON(), nullable=False, server_default="[]"))
        table.add_column(sa.Column("last_seq_no", sa.Integer(), nullable=True))
        table.add_column(_timestamp("last_part_at"))
        table.add_column(sa.Column("repeat_of", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_request", schema=SCHEMA) as table:
        for name in ("repeat_of", "last_part_at", "last_seq_no", "seq_nos"):
            table.drop_column(name)
