"""The ``billing`` schema: its name and its migrations."""

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import migrate

SCHEMA = "billing"


async def migrate_billing(engine: AsyncEngine) -> None:
    """Bring the ``billing`` schema to its newest revision."""
    await migrate(engine, "csms_billing:migrations", SCHEMA)
