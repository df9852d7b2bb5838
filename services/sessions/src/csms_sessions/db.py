"""The ``sessions`` schema: its name, migrations and the column types its tables share."""

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Column, Dialect, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from csms_core.db import UtcDateTime, migrate, ocpp_time, parse_ocpp_time, utc_now

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
E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A StrEnum stored as its value (a plain string column) and read back as the enum.

    SQLAlchemy's own Enum type would store member names and, on PostgreSQL,
    want a native enum type, which every new OCPP value would have to migrate.
    """

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self._enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self._enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self._enum(value)


def enum_column(enum: type[StrEnum], *, nullable: bool = False) -> "Column[Any]":
    """The column of a StrEnum field (pass as ``sa_column=``)."""
    return Column(StrEnumType(enum), nullable=nullable)


async def migrate_sessions(engine: AsyncEngine) -> None:
    """Bring the ``sessions`` schema to its newest revision."""
    await migrate(engine, "csms_sessions:migrations", SCHEMA)
