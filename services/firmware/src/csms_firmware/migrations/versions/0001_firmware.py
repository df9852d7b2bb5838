"""firmware: stations, sites, images, links, campaigns, statuses, logs, outbox

Revision ID: fw0001
Revises:
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "fw0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "firmware"


def _time(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _station_id(*, primary_key: bool = False) -> sa.Column[str]:
    return sa.Column("station_id", sa.String(48), primary_key=primary_key, nullable=False)


def upgrade() -> None:
    op.create_table(
        "processed_event",
        sa.Column("event_id", sa.String(64), primary_key=True),
        _time("processed_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_processed_event_at", "processed_event", ["processed_at"], schema=SCHEMA)
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_outbox_published", "outbox", ["published"], schema=SCHEMA)
    op.create_table(
        "request",
        sa.Column("request_id", sa.Integer(), primary_key=True, autoincrement=True),
        _station_id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("campaign_id", sa.String(32)),
        _time("created_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_request_station_id", "request", ["station_id"], schema=SCHEMA)
    op.create_table(
        "station",
        _station_id(primary_key=True),
        sa.Column("vendor", sa.String()),
        sa.Column("model", sa.String()),
        sa.Column("serial_number", sa.String()),
        sa.Column("firmware_version", sa.String()),
        sa.Column("ocpp_version", sa.String()),
        sa.Column("site_id", sa.String(64)),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("connection_id", sa.String()),
        _time("last_boot_at"),
        _time("updated_at", nullable=False),
        schema=SCHEMA,
    )
    for column in ("vendor", "model", "firmware_version", "site_id"):
        op.create_index(f"ix_station_{column}", "station", [column], schema=SCHEMA)
    op.create_table(
        "site",
        sa.Column("site_id", sa.String(64), primary_key=True),
        sa.Column("timezone", sa.String(), nullable=False),
        sa.Column("name", sa.String()),
        schema=SCHEMA,
    )
    op.create_table(
        "image",
        sa.Column("image_id", sa.String(32), primary_key=True),
        sa.Column("vendor", sa.String(50), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("version", sa.String(50), nullable=False),
        sa.Column("release_notes", sa.Text()),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("signature", sa.Text()),
        sa.Column("signing_certificate", sa.Text()),
        _time("created_at", nullable=False),
        sa.UniqueConstraint("vendor", "version", name="uq_image_vendor_version"),
        schema=SCHEMA,
    )
    op.create_index("ix_image_vendor", "image", ["vendor"], schema=SCHEMA)
    op.create_index("ix_image_sha256", "image", ["sha256"], schema=SCHEMA)
    op.create_table(
        "download_link",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("image_id", sa.String(32), nullable=False),
        _station_id(),
        sa.Column("request_id", sa.Integer()),
        _time("expires_at", nullable=False),
        sa.Column("downloads", sa.Integer(), nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_download_link_image_id", "download_link", ["image_id"], schema=SCHEMA)
    op.create_table(
        "publication",
        sa.Column("request_id", sa.Integer(), primary_key=True, autoincrement=False),
        _station_id(),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("locations", sa.JSON(), nullable=False),
        sa.Column("unpublished", sa.Boolean(), nullable=False),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_publication_station_id", "publication", ["station_id"], schema=SCHEMA)
    op.create_table(
        "campaign",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String()),
        sa.Column("image_id", sa.String(32), nullable=False),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("state_reason", sa.String()),
        _time("starts_at"),
        _time("ends_at"),
        sa.Column("failed_at_resume", sa.Integer(), nullable=False),
        sa.Column("finished_at_resume", sa.Integer(), nullable=False),
        _time("created_at", nullable=False),
        _time("started_at"),
        _time("finished_at"),
        schema=SCHEMA,
    )
    op.create_index("ix_campaign_state", "campaign", ["state"], schema=SCHEMA)
    op.create_index("ix_campaign_image_id", "campaign", ["image_id"], schema=SCHEMA)
    op.create_table(
        "campaign_station",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        _station_id(primary_key=True),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("ocpp_status", sa.String()),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer()),
        sa.Column("from_version", sa.String()),
        sa.Column("reason", sa.String()),
        _time("dispatched_at"),
        _time("last_activity_at"),
        _time("retry_at"),
        sa.Column("triggered", sa.Boolean(), nullable=False),
        _time("finished_at"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_campaign_station_request_id", "campaign_station", ["request_id"], schema=SCHEMA
    )
    # One campaign per station at a time, even when two replicas create campaigns at once.
    op.create_index(
        "uq_campaign_station_active",
        "campaign_station",
        ["station_id"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("active"),
        sqlite_where=sa.text("active"),
    )
    op.create_table(
        "status_record",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _station_id(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("request_id", sa.Integer()),
        sa.Column("campaign_id", sa.String(32)),
        _time("reported_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_status_record_station_id", "status_record", ["station_id"], schema=SCHEMA)
    op.create_table(
        "log_request",
        sa.Column("request_id", sa.Integer(), primary_key=True, autoincrement=False),
        _station_id(),
        sa.Column("log_type", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("protocol", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _time("expires_at", nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("ocpp_status", sa.String()),
        sa.Column("filename", sa.String()),
        sa.Column("received", sa.Boolean(), nullable=False),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_log_request_station_id", "log_request", ["station_id"], schema=SCHEMA)
    op.create_table(
        "log_file",
        sa.Column("request_id", sa.Integer(), primary_key=True, autoincrement=False),
        _station_id(),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String()),
        sa.Column("protocol", sa.String(), nullable=False),
        _time("received_at", nullable=False),
        schema=SCHEMA,
    )
    op.create_index("ix_log_file_station_id", "log_file", ["station_id"], schema=SCHEMA)


def downgrade() -> None:
    for table in (
        "log_file",
        "log_request",
        "status_record",
        "campaign_station",
        "campaign",
        "publication",
        "download_link",
        "image",
        "site",
        "station",
        "request",
        "outbox",
        "processed_event",
    ):
        op.drop_table(table, schema=SCHEMA)
