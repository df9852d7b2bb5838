"""a station's last registration status, and a new password waiting for its first use

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("station_identity", schema="identity") as table:
        table.add_column(sa.Column("registration_status", sa.String(16), nullable=True))
        table.add_column(sa.Column("pending_password_hash", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("station_identity", schema="identity") as table:
        table.drop_column("pending_password_hash")
        table.drop_column("registration_status")
