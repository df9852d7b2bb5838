"""smartcharging: the station directory (identity.station_site) filled from the assignments

Revision ID: sc0003
Revises: sc0002
"""

import sqlalchemy as sa
from alembic import op

revision = "sc0003"
down_revision = "sc0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The service migrates the identity schema first, so identity.station_site exists.
    op.execute(
        sa.text(
            "INSERT INTO identity.station_site (station_id, site_id, updated_at) "
            "SELECT station_id, site_id, CURRENT_TIMESTAMP FROM smartcharging.station"
        )
    )


def downgrade() -> None:
    pass
