"""billing: a session's receipt for the driver (California Pricing's qrCodeText)

Revision ID: bi0012
Revises: bi0011
"""

import sqlalchemy as sa
from alembic import op

revision = "bi0012"
down_revision = "bi0011"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def upgrade() -> None:
    op.add_column("session", sa.Column("receipt_id", sa.String(50), nullable=True), schema=SCHEMA)
    op.create_index(
        "ix_billing_session_receipt",
        "session",
        ["receipt_id"],
        unique=True,
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_billing_session_receipt", "session", schema=SCHEMA)
    op.drop_column("session", "receipt_id", schema=SCHEMA)
