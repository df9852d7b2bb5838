"""billing: what billing learnt of a station's cost display (California Pricing)

Revision ID: bi0005
Revises: bi0004
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0005"
down_revision = "bi0004"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "station_pricing",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("california", sa.Boolean(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("station_pricing", schema=SCHEMA)
