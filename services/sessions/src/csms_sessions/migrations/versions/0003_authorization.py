"""authorization: token restrictions, local authorization lists, reservations

Revision ID: 0003_authorization
Revises: 0001
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_authorization"
down_revision = "0001"
branch_labels = ("authorization",)
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "id_token", sa.Column("allowed_station_ids", sa.JSON(), nullable=True), schema=SCHEMA
    )
    op.add_column(
        "id_token", sa.Column("allowed_evse_ids", sa.JSON(), nullable=True), schema=SCHEMA
    )
    op.create_index("ix_id_token_group_id", "id_token", ["group_id"], schema=SCHEMA)
    op.create_table(
        "local_list",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("station_version", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.String(255), nullable=True),
        sa.Column("pending", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("needs_full", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("last_status", sa.String(), nullable=True),
        _timestamp("last_synced_at"),
        _timestamp("retry_at"),
        _timestamp("lease_until"),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_local_list_pending", "local_list", ["pending"], schema=SCHEMA)
    op.create_table(
        "local_list_entry",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("id_token", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(20), primary_key=True),
        sa.Column("status", sa.String(), nullable=False),
        _timestamp("expiry_date"),
        sa.Column("group_id", sa.String(255), nullable=True),
        sa.Column("evse_ids", sa.JSON(), nullable=True),
        sa.Column("synced", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("removed", sa.Boolean(), nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.create_index("ix_local_list_entry_id_token", "local_list_entry", ["id_token"], schema=SCHEMA)
    op.create_table(
        "reservation",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_type", sa.String(20), nullable=True),
        sa.Column("id_token", sa.String(255), nullable=False),
        sa.Column("token_type", sa.String(20), nullable=True),
        sa.Column("group_id", sa.String(255), nullable=True),
        _timestamp("expires_at", nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("ocpp_status", sa.String(), nullable=True),
        _timestamp("created_at", nullable=False),
        _timestamp("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_reservation_station_id", "reservation", ["station_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("reservation", "local_list_entry", "local_list"):
        op.drop_table(table, schema=SCHEMA)
    op.drop_index("ix_id_token_group_id", "id_token", schema=SCHEMA)
    op.drop_column("id_token", "allowed_evse_ids", schema=SCHEMA)
    op.drop_column("id_token", "allowed_station_ids", schema=SCHEMA)
