"""the station directory (station -> site) and a security profile per station

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("station_identity", schema="identity") as table:
        table.add_column(sa.Column("security_profile", sa.Integer(), nullable=True))
    op.create_table(
        "station_site",
        sa.Column("station_id", sa.String(48), primary_key=True),
        sa.Column("site_id", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema="identity",
    )
    op.create_index(
        "ix_identity_station_site_site_id", "station_site", ["site_id"], schema="identity"
    )


def downgrade() -> None:
    op.drop_index("ix_identity_station_site_site_id", "station_site", schema="identity")
    op.drop_table("station_site", schema="identity")
    with op.batch_alter_table("station_identity", schema="identity") as table:
        table.drop_column("security_profile")
