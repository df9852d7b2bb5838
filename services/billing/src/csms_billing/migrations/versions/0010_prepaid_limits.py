"""billing: a prepaid session's next check against its token's balance, and its stop

Revision ID: bi0010
Revises: bi0009
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0010"
down_revision = "bi0009"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("session", sa.Column("limit_due_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("session", sa.Column("limit_stop_at", sa.DateTime(timezone=True)), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("session", "limit_stop_at", schema=SCHEMA)
    op.drop_column("session", "limit_due_at", schema=SCHEMA)
