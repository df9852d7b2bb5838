"""smartcharging: topology, limits over time, sessions, limits on the wire, reports, samples

Revision ID: sc0001
Revises:
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "sc0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "smartcharging"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _limits() -> list[sa.Column[float]]:
    return [sa.Column("limit_a", sa.Float(), nullable=True), sa.Column("limit_kw", sa.Float())]


def upgrade() -> None:
    op.create_table(
        "site",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("phases", sa.Integer(), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=False),
        *_limits(),
        sa.Column("failsafe_a", sa.Float(), nullable=True),
        _timestamp("created_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "charging_group",
        sa.Column("group_id", sa.String(64), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False, index=True),
        sa.Column("parent_group_id", sa.String(64), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        *_limits(),
        schema=SCHEMA,
    )
    op.create_table(
        "station",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False, index=True),
        sa.Column("group_id", sa.String(64), nullable=True),
        sa.Column("max_a", sa.Float(), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "evse",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("evse_id", sa.Integer(), primary_key=True),
        sa.Column("max_a", sa.Float(), nullable=False),
        sa.Column("min_a", sa.Float(), nullable=False),
        sa.Column("phases", sa.Integer(), nullable=False),
        sa.Column("phase_rotation", sa.String(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "limit_schedule",
        sa.Column("schedule_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(64), nullable=False, index=True),
        sa.Column("group_id", sa.String(64), nullable=True),
        sa.Column("days", sa.JSON(), nullable=False),
        sa.Column("start", sa.String(), nullable=False),
        sa.Column("end", sa.String(), nullable=False),
        sa.Column("timezone", sa.String(), nullable=False),
        *_limits(),
        schema=SCHEMA,
    )
    op.create_table(
        "limit_override",
        sa.Column("site_id", sa.String(64), primary_key=True),
        *_limits(),
        _timestamp("until"),
        _timestamp("set_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "site_load",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("load_a", sa.JSON(), nullable=False),
        _timestamp("measured_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "charging_session",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.String(), nullable=True),
        sa.Column("ocpp_version", sa.String(), nullable=True),
        _timestamp("started_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("current_a", sa.Float(), nullable=True),
        sa.Column("energy_wh", sa.Float(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("ev_min_a", sa.Float(), nullable=True),
        sa.Column("ev_max_a", sa.Float(), nullable=True),
        sa.Column("energy_needed_wh", sa.Float(), nullable=True),
        _timestamp("departure_at"),
        _timestamp("underuse_since"),
        schema=SCHEMA,
    )
    op.create_table(
        "evse_limit",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("evse_id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=True),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("limit_a", sa.Float(), nullable=False),
        sa.Column("phases", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        _timestamp("sent_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "station_limit",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("evse_id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(20), primary_key=True),
        sa.Column("limit_a", sa.Float(), nullable=True),
        sa.Column("grid_critical", sa.Boolean(), nullable=False),
        _timestamp("received_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "profile_report",
        sa.Column("report_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("profiles", sa.JSON(), nullable=False),
        _timestamp("received_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "load_sample",
        sa.Column("sample_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("site_id", sa.String(64), nullable=False, index=True),
        _timestamp("at", nullable=False),
        sa.Column("limit_a", sa.JSON(), nullable=False),
        sa.Column("non_ev_a", sa.JSON(), nullable=False),
        sa.Column("allocated_a", sa.JSON(), nullable=False),
        sa.Column("measured_a", sa.JSON(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Integer(), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_load_sample_at", "load_sample", ["at"], schema=SCHEMA)
    op.create_table(
        "processed_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        _timestamp("processed_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_processed_event_processed_at", "processed_event", ["processed_at"], schema=SCHEMA
    )


TABLES = (
    "processed_event",
    "load_sample",
    "profile_report",
    "station_limit",
    "evse_limit",
    "charging_session",
    "site_load",
    "limit_override",
    "limit_schedule",
    "evse",
    "station",
    "charging_group",
    "site",
)


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table, schema=SCHEMA)
