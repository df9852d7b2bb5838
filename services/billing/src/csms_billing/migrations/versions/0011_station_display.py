"""billing: a station's cost currency and decimals (TariffCostCtrlr, California Pricing)

Revision ID: bi0011
Revises: bi0010
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0011"
down_revision = "bi0010"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column(
        "station_pricing", sa.Column("currency", sa.String(3), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "station_pricing", sa.Column("cost_decimals", sa.Integer(), nullable=True), schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("station_pricing", "cost_decimals", schema=SCHEMA)
    op.drop_column("station_pricing", "currency", schema=SCHEMA)
