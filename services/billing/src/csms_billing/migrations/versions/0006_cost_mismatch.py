"""billing: a 2.1 station's own cost that differs from the CSMS's, flagged on the session

Revision ID: bi0006
Revises: bi0005
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0006"
down_revision = "bi0005"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("session", sa.Column("cost_mismatch", sa.JSON()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("session", "cost_mismatch", schema=SCHEMA)
