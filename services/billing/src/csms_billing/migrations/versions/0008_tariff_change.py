"""billing: a session's tariff changed while it ran (ChangeTransactionTariff)

Revision ID: bi0008
Revises: bi0007
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0008"
down_revision = "bi0007"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "session_tariff_change",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("tariff_id", sa.String(36), nullable=False),
        sa.Column("tariff_version", sa.Integer(), nullable=False),
        sa.Column("station_status", sa.String(24)),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("session_tariff_change", schema=SCHEMA)
