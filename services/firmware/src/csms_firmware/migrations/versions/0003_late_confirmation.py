"""firmware: what a late boot's confirmation reads: when a campaign last started or
resumed (whether a failure was counted before it), and a station's campaign rows by when
they finished (its latest one)

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
    op.create_index(
        "ix_campaign_station_finished",
        "campaign_station",
        ["station_id", "finished_at"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_station_finished", "campaign_station", schema=SCHEMA)
    op.drop_column("campaign", "resumed_at", schema=SCHEMA)
