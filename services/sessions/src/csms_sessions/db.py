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
    "fits_int32",
    "migrate_sessions",
    "ocpp_time",
    "parse_ocpp_time",
    "utc_now",
]

SCHEMA = "sessions"


async def migrate_sessions(engine: AsyncEngine) -> None:
    """Bring the ``sessions`` schema to its newest revision."""
    await migrate(engine, "csms_sessions:migrations", SCHEMA)


INT32_MAX = 2**31 - 1


def fits_int32(value: object) -> bool:
    """An integer a 32-bit column holds, or no integer at all: the OCPP schemas bound no
    integer, PostgreSQL refuses a larger one (the whole statement, not one row)."""
    return (
        not isinstance(value, int)
        or isinstance(value, bool)
        or -INT32_MAX - 1 <= value <= INT32_MAX
    )
