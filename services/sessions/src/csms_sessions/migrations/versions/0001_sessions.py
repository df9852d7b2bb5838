"""sessions: stations, connector status, id tokens, processed events, 1.6 transaction ids

Revision ID: 0001
Revises:
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "station",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("registered", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("vendor", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("serial_number", sa.String(), nullable=True),
        sa.Column("firmware_version", sa.String(), nullable=True),
        sa.Column("ocpp_version", sa.String(), nullable=True),
        sa.Column("boot_status", sa.String(), nullable=True),
        _timestamp("last_boot_at"),
        _timestamp("last_seen_at"),
        sa.Column("online", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("gateway_id", sa.String(), nullable=True),
        sa.Column("connection_id", sa.String(), nullable=True),
        _timestamp("connected_at"),
        _timestamp("disconnected_at"),
        _timestamp("created_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_station_online", "station", ["online"], schema=SCHEMA)
    op.create_table(
        "connector_status",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("evse_id", sa.Integer(), primary_key=True),
        sa.Column("connector_id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("ocpp_status", sa.String(), nullable=False),
        sa.Column("error_code", sa.String(), nullable=True),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "id_token",
        sa.Column("id_token", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        _timestamp("expiry_date"),
        sa.Column("group_id", sa.String(255), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "processed_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        _timestamp("processed_at", nullable=False),
        sa.Column("gateway_id", sa.String(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("outbox", sa.JSON(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_processed_event_processed_at", "processed_event", ["processed_at"], schema=SCHEMA
    )
    op.create_table(
        "transaction_id",
        sa.Column("transaction_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        _timestamp("allocated_at", nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in ("transaction_id", "processed_event", "id_token", "connector_status", "station"):
        op.drop_table(table, schema=SCHEMA)
