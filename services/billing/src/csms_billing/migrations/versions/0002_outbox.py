"""billing: the inbox keeps the events an event causes until they are published; a
session's CDR is due a moment after its end

Revision ID: bi0002
Revises: bi0001
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0002"
down_revision = "bi0001"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("processed_event", sa.Column("outbox", sa.JSON()), schema=SCHEMA)
    op.add_column(
        "processed_event",
        sa.Column("completed", sa.Boolean(), nullable=False, server_default=sa.true()),
        schema=SCHEMA,
    )
    op.add_column("session", sa.Column("cdr_due_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.create_index("ix_billing_session_cdr_due", "session", ["cdr_due_at"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_billing_session_cdr_due", "session", schema=SCHEMA)
    op.drop_column("session", "cdr_due_at", schema=SCHEMA)
    op.drop_column("processed_event", "completed", schema=SCHEMA)
    op.drop_column("processed_event", "outbox", schema=SCHEMA)
