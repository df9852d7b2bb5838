"""device model: remote starts, 1.6 configuration keys, 2.x device model, report requests

Revision ID: 0004_device_model
Revises: 0001
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0004_device_model"
down_revision = "0001"
branch_labels = ("device_model",)
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "remote_start",
        sa.Column("remote_start_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("token_type", sa.String(20), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        _timestamp("requested_at", nullable=False),
        sa.Column("status", sa.String(20), nullable=True),
        schema=SCHEMA,
    )
    op.create_index("ix_remote_start_station_id", "remote_start", ["station_id"], schema=SCHEMA)
    op.create_table(
        "station_configuration",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("key", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(500), nullable=True),
        sa.Column("readonly", sa.Boolean(), nullable=False, server_default=sa.false()),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "device_model_variable",
        sa.Column("station_id", sa.String(48), primary_key=True),
        # The identifying tuple as one string (see configuration.models.VariableRef.key).
        sa.Column("variable_key", sa.String(400), primary_key=True),
        sa.Column("component", sa.String(50), nullable=False),
        sa.Column("component_instance", sa.String(50), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("variable", sa.String(50), nullable=False),
        sa.Column("variable_instance", sa.String(50), nullable=True),
        sa.Column("attribute_type", sa.String(10), nullable=False),
        sa.Column("value", sa.String(2500), nullable=True),
        sa.Column("mutability", sa.String(10), nullable=True),
        sa.Column("data_type", sa.String(20), nullable=True),
        sa.Column("unit", sa.String(16), nullable=True),
        sa.Column("min_limit", sa.Float(), nullable=True),
        sa.Column("max_limit", sa.Float(), nullable=True),
        sa.Column("values_list", sa.String(1000), nullable=True),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "report_request",
        sa.Column("request_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        _timestamp("requested_at", nullable=False),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("parts_received", sa.Integer(), nullable=False, server_default="0"),
        _timestamp("completed_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_report_request_station_id", "report_request", ["station_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("report_request", "device_model_variable", "station_configuration"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_table("remote_start", schema=SCHEMA)
