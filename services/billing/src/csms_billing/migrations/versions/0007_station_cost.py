"""billing: a 2.1 station's own latest cost (costDetails), kept to be reconciled

Revision ID: bi0007
Revises: bi0006
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0007"
down_revision = "bi0006"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("session", sa.Column("station_cost", sa.JSON()), schema=SCHEMA)


def downgrade() -> None:
    op.drop_column("session", "station_cost", schema=SCHEMA)
