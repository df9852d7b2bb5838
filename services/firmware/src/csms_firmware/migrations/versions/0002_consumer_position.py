"""firmware: how far each consumer member has read (silence is judged against it)

Revision ID: fw0002
Revises: fw0001
"""

import sqlalchemy as sa
from alembic import op

revision = "fw0002"
down_revision = "fw0001"
branch_labels = None
depends_on = None

SCHEMA = "firmware"


def upgrade() -> None:
    op.create_table(
        "consumer_position",
        sa.Column("member_id", sa.String(32), primary_key=True),
        sa.Column("read_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("busy", sa.Boolean(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("consumer_position", schema=SCHEMA)
