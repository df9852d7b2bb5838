"""monitoring: the monitors stations hold, their monitoring base and level, their events

Revision ID: 0008_monitoring
Revises: 0007_report_parts
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0008_monitoring"
down_revision = "0007_report_parts"
branch_labels = None
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _variable_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("component", sa.String(50), nullable=False),
        sa.Column("component_instance", sa.String(50), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("variable", sa.String(50), nullable=False),
        sa.Column("variable_instance", sa.String(50), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "variable_monitor",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("monitor_id", sa.Integer(), primary_key=True, autoincrement=False),
        *_variable_columns(),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("severity", sa.Integer(), nullable=False),
        sa.Column("transaction", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("event_notification_type", sa.String(30), nullable=True),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "monitoring_setting",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("monitoring_base", sa.String(20), nullable=True),
        sa.Column("monitoring_level", sa.Integer(), nullable=True),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "station_event",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        _timestamp("timestamp", nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("event_notification_type", sa.String(30), nullable=False),
        *_variable_columns(),
        sa.Column("actual_value", sa.String(2500), nullable=False),
        sa.Column("cleared", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("cause", sa.Integer(), nullable=True),
        sa.Column("tech_code", sa.String(50), nullable=True),
        sa.Column("tech_info", sa.String(500), nullable=True),
        sa.Column("transaction_id", sa.String(36), nullable=True),
        sa.Column("variable_monitoring_id", sa.Integer(), nullable=True),
        sa.Column("severity", sa.Integer(), nullable=True),
        _timestamp("received_at", nullable=False),
        sa.UniqueConstraint("station_id", "event_id", "timestamp"),
        schema=SCHEMA,
    )
    op.create_index("ix_station_event_station_id", "station_event", ["station_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_index("ix_station_event_station_id", "station_event", schema=SCHEMA)
    for name in ("station_event", "monitoring_setting", "variable_monitor"):
        op.drop_table(name, schema=SCHEMA)
