"""security: signing requests, station certificates, installed certificates, security events,
profile upgrades, station links, processed events

Revision ID: sec0001
Revises:
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "sec0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "security"


def _timestamp(name: str, *, nullable: bool = False, index: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "signing_request",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("ocpp_version", sa.String(8), nullable=False),
        sa.Column("certificate_use", sa.String(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("csr", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False, index=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("serial", sa.String(40), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("next_attempt_at", nullable=True, index=True),
        _timestamp("received_at"),
        _timestamp("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "station_certificate",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("certificate_use", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("issuer_key_id", sa.String(64), nullable=False),
        sa.Column("signer", sa.String(16), nullable=False),
        _timestamp("not_before"),
        _timestamp("not_after", index=True),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False, index=True),
        sa.Column("signing_request_id", sa.String(64), nullable=True),
        _timestamp("issued_at"),
        _timestamp("renewal_requested_at", nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "installed_certificate",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("certificate_type", sa.String(40), nullable=False),
        sa.Column("hash_algorithm", sa.String(8), nullable=False),
        sa.Column("issuer_name_hash", sa.String(128), nullable=False),
        sa.Column("issuer_key_hash", sa.String(128), nullable=False),
        sa.Column("serial_number", sa.String(40), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        _timestamp("reported_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "inventory_refresh",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("ocpp_version", sa.String(8), nullable=False),
        _timestamp("refreshed_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "security_event",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("type", sa.String(50), nullable=False),
        sa.Column("name_2x", sa.String(50), nullable=True, index=True),
        sa.Column("name_16", sa.String(50), nullable=True),
        sa.Column("severity", sa.String(), nullable=False, index=True),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("ocpp_version", sa.String(8), nullable=True),
        _timestamp("timestamp", index=True),
        _timestamp("received_at"),
        sa.Column("tech_info", sa.String(255), nullable=True),
        schema=SCHEMA,
    )
    op.create_table(
        "profile_upgrade",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("station_id", sa.String(48), nullable=False, index=True),
        sa.Column("ocpp_version", sa.String(8), nullable=False),
        sa.Column("from_profile", sa.Integer(), nullable=False),
        sa.Column("target_profile", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False, index=True),
        sa.Column("configuration_slot", sa.Integer(), nullable=True),
        sa.Column("csms_url", sa.String(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("deadline"),
        schema=SCHEMA,
    )
    op.create_table(
        "station_link",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("security_profile", sa.Integer(), nullable=False),
        sa.Column("ocpp_version", sa.String(8), nullable=False),
        sa.Column("connection_id", sa.String(64), nullable=False),
        _timestamp("updated_at"),
        schema=SCHEMA,
    )
    op.create_table(
        "processed_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        _timestamp("processed_at", index=True),
        sa.Column("gateway_id", sa.String(), nullable=True),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("outbox", sa.JSON(), nullable=True),
        sa.Column("completed", sa.Boolean(), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    for table in (
        "processed_event",
        "station_link",
        "profile_upgrade",
        "security_event",
        "inventory_refresh",
        "installed_certificate",
        "station_certificate",
        "signing_request",
    ):
        op.drop_table(table, schema=SCHEMA)
