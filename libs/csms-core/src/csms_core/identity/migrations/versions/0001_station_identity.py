"""station identity: per-station password hash and lenient validation flag

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_identity",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("lenient", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="identity",
    )


def downgrade() -> None:
    op.drop_table("station_identity", schema="identity")
