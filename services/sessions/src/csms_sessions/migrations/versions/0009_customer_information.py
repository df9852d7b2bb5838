"""customer information: the parts of what stations reported about a customer

Revision ID: 0009_customer_information
Revises: 0008_monitoring
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_customer_information"
down_revision = "0008_monitoring"
branch_labels = None
depends_on = None

SCHEMA = "sessions"


def upgrade() -> None:
    op.create_table(
        "customer_information_part",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("request_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq_no", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("data", sa.String(512), nullable=False),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("customer_information_part", schema=SCHEMA)
