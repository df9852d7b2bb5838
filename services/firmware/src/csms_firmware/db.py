"""The ``firmware`` schema: its name, migrations and the column types its tables share."""

from sqlalchemy.ext.asyncio import AsyncEngine

from csms_core.db import StrEnumType, UtcDateTime, enum_column, migrate, ocpp_time, utc_now
from csms_core.db import parse_ocpp_time as parse_time

__all__ = [
    "SCHEMA",
    "StrEnumType",
    "UtcDateTime",
    "enum_column",
    "migrate_firmware",
    "ocpp_time",
    "parse_time",
    "utc_now",
]

SCHEMA = "firmware"


async def migrate_firmware(engine: AsyncEngine) -> None:
    """Bring the ``firmware`` schema to its newest revision."""
    await migrate(engine, "csms_firmware:migrations", SCHEMA)
