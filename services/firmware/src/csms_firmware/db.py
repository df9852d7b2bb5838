"""The ``firmware`` schema: its name, migrations and the column types its tables share."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Column, DateTime, Dialect, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from csms_core.db import migrate

SCHEMA = "firmware"


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str) -> datetime:
    """An RFC 3339 time as an aware UTC datetime; a zone-less value counts as UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def ocpp_time(value: datetime) -> str:
    """A datetime as OCPP writes it (UTC, milliseconds, ``Z``)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back zone-aware on PostgreSQL and SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def migrate_firmware(engine: AsyncEngine) -> None:
    """Bring the ``firmware`` schema to its newest revision."""
    await migrate(engine, "csms_firmware:migrations", SCHEMA)


E = TypeVar("E", bound=StrEnum)


class StrEnumType(TypeDecorator[E]):
    """A StrEnum stored as its value in a plain string column (no native enum to migrate)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E]) -> None:
        super().__init__()
        self._enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self._enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self._enum(value)


def enum_column(
    enum: type[StrEnum], *, nullable: bool = False, index: bool = False
) -> "Column[Any]":
    """The column of a StrEnum field (pass as ``sa_column=``)."""
    return Column(StrEnumType(enum), nullable=nullable, index=index)
