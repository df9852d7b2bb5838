"""smartcharging: provisional sessions (a transaction seen starting, not yet a session)

Revision ID: sc0002
Revises: sc0001
"""

import sqlalchemy as sa
from alembic import op

revision = "sc0002"
down_revision = "sc0001"
branch_labels = None
depends_on = None

SCHEMA = "smartcharging"


def upgrade() -> None:
    op.add_column(
        "charging_session",
        sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("charging_session", "provisional", schema=SCHEMA)
