"""The ``sessions`` schema: its name, migrations and the column types its tables share."""

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import (
    StrEnumType,
    UtcDateTime,
    enum_column,
    migrate,
    ocpp_time,
    parse_ocpp_time,
    utc_now,
)

__all__ = [
    "SCHEMA",
    "StrEnumType",
    "UtcDateTime",
    "enum_column",
    "migrate_sessions",
    "ocpp_time",
    "parse_ocpp_time",
    "utc_now",
]

SCHEMA = "sessions"


async def migrate_sessions(engine: AsyncEngine) -> None:
    """Bring the ``sessions`` schema to its newest revision."""
    await migrate(engine, "csms_sessions:migrations", SCHEMA)
