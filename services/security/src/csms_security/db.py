"""The ``security`` schema: its name, migrations and the column types its tables share."""

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import UtcDateTime, enum_column, migrate, ocpp_time, parse_ocpp_time, utc_now

__all__ = [
    "SCHEMA",
    "UtcDateTime",
    "enum_column",
    "migrate_security",
    "ocpp_time",
    "parse_ocpp_time",
    "utc_now",
]

SCHEMA = "security"


async def migrate_security(engine: AsyncEngine) -> None:
    """Bring the ``security`` schema to its newest revision."""
    await migrate(engine, "csms_security:migrations", SCHEMA)
