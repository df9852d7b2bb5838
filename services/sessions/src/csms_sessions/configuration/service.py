"""Storing what stations report of their configuration: upserts, idempotent by design.

A report part that arrives twice or out of order writes the same rows again,
so each write is an INSERT … ON CONFLICT DO UPDATE (PostgreSQL and SQLite alike).
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.configuration.models import (
    DeviceModelVariable,
    StationConfiguration,
    VariableRef,
)
from csms_sessions.db import SCHEMA, utc_now

# Of a variable, what a NotifyReport describes; GetVariables/SetVariables only know the value.
DESCRIPTION_COLUMNS = ("mutability", "data_type", "unit", "min_limit", "max_limit", "values_list")


async def upsert(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    updated: Sequence[str],
    filled: Sequence[str] = (),
) -> None:
    """Insert ``rows``, or where the ``keys`` exist update their ``updated`` columns, and
    their ``filled`` columns where the row has a value (a report may leave some out)."""
    if not rows:
        return
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement may not touch a row twice (PostgreSQL): the last of duplicates wins.
    unique = list({tuple(row[k] for k in keys): row for row in rows}.values())
    statement = insert(table).values(unique)
    changes: dict[str, Any] = {name: statement.excluded[name] for name in (*updated, "updated_at")}
    for name in filled:
        changes[name] = func.coalesce(statement.excluded[name], table.c[name])
    await session.exec(statement.on_conflict_do_update(index_elements=keys, set_=changes))


async def store_keys(
    session: AsyncSession, station_id: str, keys: Sequence[dict[str, Any]]
) -> None:
    """OCPP 1.6 KeyValue entries (GetConfiguration) as the station's configuration."""
    rows = [
        {
            "station_id": station_id,
            "key": entry["key"],
            "value": entry.get("value"),
            "readonly": entry["readonly"],
            "updated_at": utc_now(),
        }
        for entry in keys
    ]
    await upsert(
        session, table_of(StationConfiguration), rows, ("station_id", "key"), ("value", "readonly")
    )


async def store_value(session: AsyncSession, station_id: str, key: str, value: str) -> None:
    """A 1.6 key's value the station accepted (ChangeConfiguration); readonly keys refuse."""
    row = {"station_id": station_id, "key": key, "value": value, "updated_at": utc_now()}
    await upsert(session, table_of(StationConfiguration), [row], ("station_id", "key"), ("value",))


async def store_variables(
    session: AsyncSession, station_id: str, rows: Sequence[dict[str, Any]], *, described: bool
) -> None:
    """Device model rows (``VariableRef.columns()`` plus values); ``described``: a report's."""
    stamped = [{"station_id": station_id, "updated_at": utc_now(), **row} for row in rows]
    await upsert(
        session,
        table_of(DeviceModelVariable),
        stamped,
        ("station_id", "variable_key"),
        ("value",),
        DESCRIPTION_COLUMNS if described else (),
    )


async def items_per_message(
    session: AsyncSession, station_id: str, action: str, component: str = "DeviceDataCtrlr"
) -> int | None:
    """How many items the station takes in one GetVariables/SetVariables, if it reported it
    (OCPP 2.0.1 Part 2 B06.FR.03/B05.FR.02: DeviceDataCtrlr.ItemsPerMessage[action]; for
    Set/ClearVariableMonitoring MonitoringCtrlr.ItemsPerMessage[action], N04.FR.08/N06)."""
    ref = VariableRef(component, "ItemsPerMessage", variable_instance=action)
    row = await session.get(DeviceModelVariable, (station_id, ref.key))
    value = row.value if row else None
    return int(value) if value and value.isdigit() and int(value) > 0 else None


async def configuration_keys(
    session: AsyncSession, station_id: str, limit: int, offset: int
) -> tuple[Sequence[StationConfiguration], int]:
    """One page of a 1.6 station's keys by name, and how many it has."""
    mine = col(StationConfiguration.station_id) == station_id
    query = select(StationConfiguration).where(mine).order_by(col(StationConfiguration.key))
    counted = select(func.count()).select_from(StationConfiguration).where(mine)
    rows = await session.exec(query.offset(offset).limit(limit))
    return rows.all(), (await session.exec(counted)).one()


async def device_model(
    session: AsyncSession, station_id: str, limit: int, offset: int
) -> tuple[Sequence[DeviceModelVariable], int]:
    """One page of a 2.x station's device model by component and variable, and its size."""
    mine = col(DeviceModelVariable.station_id) == station_id
    query = (
        select(DeviceModelVariable)
        .where(mine)
        .order_by(
            col(DeviceModelVariable.component),
            col(DeviceModelVariable.variable),
            col(DeviceModelVariable.variable_key),
        )
    )
    counted = select(func.count()).select_from(DeviceModelVariable).where(mine)
    rows = await session.exec(query.offset(offset).limit(limit))
    return rows.all(), (await session.exec(counted)).one()


def table_of(model: type[SQLModel]) -> Table:
    table = SQLModel.metadata.tables[f"{SCHEMA}.{model.__tablename__}"]
    return table
