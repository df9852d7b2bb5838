"""billing: when a live session's running cost is next sent, and the last one sent

Revision ID: bi0003
Revises: bi0002
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0003"
down_revision = "bi0002"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("session", sa.Column("cost_due_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("session", sa.Column("cost_sent", sa.Float()), schema=SCHEMA)
    op.create_index("ix_billing_session_cost_due", "session", ["cost_due_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_billing_session_cost_due", "session", schema=SCHEMA)
    op.drop_column("session", "cost_sent", schema=SCHEMA)
    op.drop_column("session", "cost_due_at", schema=SCHEMA)
