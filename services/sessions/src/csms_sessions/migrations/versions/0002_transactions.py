"""transactions: charging sessions and meter samples

Revision ID: 0002_transactions
Revises: 0001
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0002_transactions"
down_revision = "0001"
branch_labels = ("transactions",)
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "charging_session",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("transaction_id", sa.String(36), nullable=False),
        sa.Column("ocpp_version", sa.String(8), nullable=True),
        sa.Column("id_token", sa.String(255), nullable=True),
        sa.Column("id_token_type", sa.String(20), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("start_seen", sa.Boolean(), nullable=False, server_default=sa.false()),
        _timestamp("started_at", nullable=False),
        _timestamp("ended_at"),
        sa.Column("stop_reason", sa.String(30), nullable=True),
        sa.Column("ocpp_stop_reason", sa.String(30), nullable=True),
        sa.Column("trigger_reason", sa.String(40), nullable=True),
        sa.Column("charging_state", sa.String(20), nullable=True),
        sa.Column("meter_start_wh", sa.Float(), nullable=True),
        sa.Column("meter_stop_wh", sa.Float(), nullable=True),
        sa.Column("energy_wh", sa.Float(), nullable=True),
        sa.Column("last_power_w", sa.Float(), nullable=True),
        sa.Column("last_current_a", sa.Float(), nullable=True),
        sa.Column("soc_percent", sa.Float(), nullable=True),
        _timestamp("measured_at"),
        sa.Column("last_seq_no", sa.Integer(), nullable=True),
        sa.Column("seen_seq_nos", sa.JSON(), nullable=False),
        sa.Column("seq_gap", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("offline", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("remote_start_id", sa.Integer(), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        sa.UniqueConstraint("station_id", "transaction_id", name="uq_charging_session_transaction"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_charging_session_station_state",
        "charging_session",
        ["station_id", "state"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_charging_session_started_at", "charging_session", ["started_at"], schema=SCHEMA
    )
    op.create_index("ix_charging_session_id_token", "charging_session", ["id_token"], schema=SCHEMA)
    op.create_table(
        "meter_sample",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.String(36), nullable=True),
        sa.Column("transaction_id", sa.String(36), nullable=True),
        _timestamp("timestamp", nullable=False),
        sa.Column("measurand", sa.String(50), nullable=False),
        sa.Column("phase", sa.String(10), nullable=True),
        sa.Column("location", sa.String(10), nullable=True),
        sa.Column("context", sa.String(30), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(20), nullable=True),
        sa.Column("signed", sa.JSON(), nullable=True),
        sa.Column("raw_value", sa.String(), nullable=True),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_meter_sample_session_time", "meter_sample", ["session_id", "timestamp"], schema=SCHEMA
    )
    op.create_index(
        "ix_meter_sample_station_time", "meter_sample", ["station_id", "timestamp"], schema=SCHEMA
    )


def downgrade() -> None:
    for table in ("meter_sample", "charging_session"):
        op.drop_table(table, schema=SCHEMA)
