"""firmware: when a campaign last started or resumed (a late boot's failure was counted before)

Revision ID: fw0003
Revises: fw0002
"""

import sqlalchemy as sa
from alembic import op

revision = "fw0003"
down_revision = "fw0002"
branch_labels = None
depends_on = None

SCHEMA = "firmware"


def upgrade() -> None:
    op.add_column(
        "campaign",
        sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("campaign", "resumed_at", schema=SCHEMA)
