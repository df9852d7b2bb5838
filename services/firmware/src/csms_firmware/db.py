"""The ``firmware`` schema: its name, migrations and the column types its tables share."""

from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import Column, Dialect, String
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeDecorator

from csms_core.db import UtcDateTime, migrate, ocpp_time, utc_now
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
