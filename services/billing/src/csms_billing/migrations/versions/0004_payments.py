"""billing: web payments, provider events, prepaid accounts and entries, settlements

Revision ID: bi0004
Revises: bi0003
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "bi0004"
down_revision = "bi0003"
branch_labels = None
depends_on = None

SCHEMA = "billing"


def _at(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "web_payment",
        sa.Column("web_payment_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        _at("expires_at"),
        sa.Column("payment_id", sa.String(255), unique=True),
        sa.Column("amount_minor", sa.BigInteger()),
        sa.Column("currency", sa.String(3)),
        sa.Column("remote_start_id", sa.Integer()),
        sa.Column("detail", sa.String(255)),
        _at("created_at"),
        _at("updated_at"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_billing_web_payment_evse",
        "web_payment",
        ["station_id", "evse_id", "status"],
        schema=SCHEMA,
    )
    op.create_table(
        "payment_event",
        sa.Column("event_id", sa.String(80), primary_key=True),
        _at("received_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "prepaid_account",
        sa.Column("id_token", sa.String(255), primary_key=True),
        sa.Column("currency", sa.String(3), nullable=False),
        _at("created_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "prepaid_entry",
        sa.Column("entry_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("cdr_id", sa.String(39), unique=True),
        _at("at"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_billing_prepaid_entry_token", "prepaid_entry", ["id_token", "at"], schema=SCHEMA
    )
    op.create_table(
        "settlement",
        sa.Column("receipt_id", sa.String(50), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("transaction_id", sa.String(36)),
        sa.Column("session_id", sa.String(36)),
        sa.Column("cdr_id", sa.String(39)),
        sa.Column("psp_ref", sa.String(255), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        _at("settled_at"),
        sa.Column("receipt_url", sa.String(2000), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        _at("created_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_billing_settlement_session", "settlement", ["session_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("settlement", "prepaid_entry", "prepaid_account", "payment_event", "web_payment"):
        op.drop_table(table, schema=SCHEMA)
