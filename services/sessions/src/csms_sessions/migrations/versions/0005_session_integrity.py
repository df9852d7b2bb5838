"""session integrity: final figures, flags, late data, the message log, idle EVSEs

Revision ID: 0005_session_integrity
Revises: 0002_transactions
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0005_session_integrity"
down_revision = "0002_transactions"
branch_labels = None
depends_on = None

SCHEMA = "sessions"


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("charging_session", schema=SCHEMA) as table:
        table.add_column(sa.Column("start_seq_no", sa.Integer(), nullable=True))
        table.add_column(
            sa.Column("final", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("flags", sa.JSON(), nullable=False, server_default="[]"))
        table.add_column(
            sa.Column("late_messages", sa.Integer(), nullable=False, server_default="0")
        )
        table.add_column(_timestamp("idle_since"))
        table.add_column(_timestamp("idle_noticed_at"))
        table.add_column(_timestamp("resolution_checked_at"))
    # Sessions that ended before this revision: their figures were final when they ended.
    op.execute(
        sa.text(
            f"UPDATE {SCHEMA}.charging_session SET final = :yes "  # noqa: S608 - constant schema
            "WHERE state = 'ended' AND start_seen = :yes"
        ).bindparams(yes=True)
    )
    with op.batch_alter_table("meter_sample", schema=SCHEMA) as table:
        table.add_column(sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "session_message",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(10), nullable=True),
        sa.Column("seq_no", sa.Integer(), nullable=True),
        _timestamp("timestamp"),
        _timestamp("received_at", nullable=False),
        sa.Column("disposition", sa.String(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_session_message_session", "session_message", ["session_id", "id"], schema=SCHEMA
    )
    op.create_index(
        "ix_charging_session_station_evse_state",
        "charging_session",
        ["station_id", "evse_id", "state"],
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_index("ix_charging_session_station_evse_state", "charging_session", schema=SCHEMA)
    op.drop_table("session_message", schema=SCHEMA)
    with op.batch_alter_table("meter_sample", schema=SCHEMA) as table:
        table.drop_column("late")
    with op.batch_alter_table("charging_session", schema=SCHEMA) as table:
        for name in (
            "resolution_checked_at",
            "idle_noticed_at",
            "idle_since",
            "late_messages",
            "flags",
            "final",
            "start_seq_no",
        ):
            table.drop_column(name)
