"""The ``smartcharging`` schema: its name and migrations (time helpers and column types
are csms_core.db's)."""

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import migrate

SCHEMA = "smartcharging"


async def migrate_smartcharging(engine: AsyncEngine) -> None:
    """Bring the ``smartcharging`` schema to its newest revision."""
    await migrate(engine, "csms_smartcharging:migrations", SCHEMA)
