"""remote starts linked to the session they started

Revision ID: 0006_remote_start_session
Revises: 0004_device_model
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_remote_start_session"
down_revision = "0004_device_model"
branch_labels = None
depends_on = None

SCHEMA = "sessions"


def upgrade() -> None:
    with op.batch_alter_table("remote_start", schema=SCHEMA) as table:
        table.add_column(sa.Column("session_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("remote_start", schema=SCHEMA) as table:
        table.drop_column("session_id")
