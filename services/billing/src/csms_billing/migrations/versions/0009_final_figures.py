"""billing: the sessions service's final figures of a session (its energy, final or not);
samples read after the session's CDR

Revision ID: bi0009
Revises: bi0008
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0009"
down_revision = "bi0008"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("session", sa.Column("energy_wh", sa.Float()), schema=SCHEMA)
    op.add_column(
        "session",
        sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    # An ended session that had its CDR due or issued ended with final figures.
    op.execute(
        sa.text(
            f"UPDATE {SCHEMA}.session SET final = :yes "  # noqa: S608 - constant schema
            "WHERE cdr_id IS NOT NULL OR cdr_due_at IS NOT NULL"
        ).bindparams(yes=True)
    )
    op.add_column(
        "session_sample",
        sa.Column("after_cdr", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_column("session_sample", "after_cdr", schema=SCHEMA)
    op.drop_column("session", "final", schema=SCHEMA)
    op.drop_column("session", "energy_wh", schema=SCHEMA)
