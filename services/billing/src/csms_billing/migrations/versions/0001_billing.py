"""billing: tariffs and their versions, sessions and samples, CDRs, the inbox

Revision ID: bi0001
Revises:
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "bi0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "billing"


def _at(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tariff",
        sa.Column("tariff_id", sa.String(36), primary_key=True),
        sa.Column("tariff_type", sa.String(20)),
        sa.Column("applies_to", sa.JSON(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("taxes", sa.JSON(), nullable=False),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        _at("deleted_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_billing_tariff_updated_at", "tariff", ["updated_at"], schema=SCHEMA)
    op.create_table(
        "tariff_target",
        sa.Column("target_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payment", sa.String(16), nullable=False),
        sa.Column("tariff_id", sa.String(36), nullable=False, index=True),
        sa.UniqueConstraint("kind", "key", "payment", name="uq_tariff_target"),
        schema=SCHEMA,
    )
    op.create_table(
        "tariff_version",
        sa.Column("tariff_id", sa.String(36), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
        _at("valid_from", nullable=False),
        _at("valid_to"),
        sa.Column("body", sa.JSON(), nullable=False),
        _at("created_at", nullable=False),
        schema=SCHEMA,
    )
    _sessions()
    _cdrs()
    op.create_table(
        "processed_event",
        sa.Column("event_id", sa.String(80), primary_key=True),
        _at("processed_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_billing_processed_event_processed_at",
        "processed_event",
        ["processed_at"],
        schema=SCHEMA,
    )


def _sessions() -> None:
    op.create_table(
        "session",
        sa.Column("session_id", sa.String(36), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("evse_id", sa.Integer()),
        sa.Column("connector_id", sa.Integer()),
        sa.Column("transaction_id", sa.String(36), nullable=False),
        sa.Column("ocpp_version", sa.String(8)),
        sa.Column("id_token", sa.String(255)),
        sa.Column("token_type", sa.String(20)),
        sa.Column("group_id", sa.String(255)),
        sa.Column("site_id", sa.String(64)),
        sa.Column("state", sa.String(8), nullable=False),
        _at("started_at", nullable=False),
        _at("ended_at"),
        sa.Column("meter_start_wh", sa.Float()),
        sa.Column("meter_stop_wh", sa.Float()),
        sa.Column("stop_reason", sa.String(30)),
        _at("reserved_at"),
        sa.Column("tariff_id", sa.String(36)),
        sa.Column("tariff_version", sa.Integer()),
        sa.Column("cdr_id", sa.String(39)),
        sa.Column("settlement", sa.JSON()),
        sa.Column("max_cost", sa.Float()),
        _at("created_at", nullable=False),
        _at("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_billing_session_station", "session", ["station_id", "started_at"], schema=SCHEMA
    )
    op.create_table(
        "session_sample",
        sa.Column("session_id", sa.String(36), nullable=False),
        _at("at", nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("phase", sa.String(8), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("signed", sa.JSON()),
        sa.Column("context", sa.String(24)),
        sa.PrimaryKeyConstraint("session_id", "at", "kind", "phase"),
        schema=SCHEMA,
    )


def _cdrs() -> None:
    op.create_table(
        "cdr",
        sa.Column("cdr_id", sa.String(39), primary_key=True),
        sa.Column("session_id", sa.String(36), nullable=False, index=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("site_id", sa.String(64)),
        sa.Column("id_token", sa.String(255)),
        sa.Column("credit", sa.Boolean(), nullable=False),
        sa.Column("credit_reference_id", sa.String(39)),
        sa.Column("credited_by", sa.String(39)),
        _at("start_date_time", nullable=False),
        _at("end_date_time", nullable=False),
        _at("last_updated", nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        schema=SCHEMA,
    )
    for name, columns in (
        ("ix_billing_cdr_last_updated", ["last_updated", "cdr_id"]),
        ("ix_billing_cdr_station", ["station_id", "last_updated"]),
        ("ix_billing_cdr_token", ["id_token", "last_updated"]),
        ("ix_billing_cdr_site", ["site_id", "last_updated"]),
    ):
        op.create_index(name, "cdr", columns, schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "processed_event",
        "cdr",
        "session_sample",
        "session",
        "tariff_version",
        "tariff_target",
        "tariff",
    ):
        op.drop_table(table, schema=SCHEMA)
