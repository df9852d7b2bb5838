"""Storing the monitors a station holds and the events it notifies (database only)."""

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_sessions.configuration.service import table_of, upsert
from csms_sessions.db import fits_int32, utc_now
from csms_sessions.monitoring.models import MonitoringSetting, StationEvent, VariableMonitor

logger = logging.getLogger(__name__)

_MONITOR_COLUMNS = (
    "component",
    "component_instance",
    "evse_id",
    "connector_id",
    "variable",
    "variable_instance",
    "type",
    "value",
    "severity",
    "transaction",
)


async def store_monitors(
    session: AsyncSession, station_id: str, rows: Sequence[dict[str, Any]]
) -> None:
    """Monitors by their station-given id (upserted: report parts may come twice)."""
    stamped = [
        {"station_id": station_id, "updated_at": utc_now(), **row}
        for row in _storable(station_id, rows)
    ]
    await upsert(
        session,
        table_of(VariableMonitor),
        stamped,
        ("station_id", "monitor_id"),
        _MONITOR_COLUMNS,
        ("event_notification_type",),
    )


async def remove_monitors(session: AsyncSession, station_id: str, ids: Sequence[int]) -> None:
    if ids:
        await session.exec(
            delete(VariableMonitor).where(
                col(VariableMonitor.station_id) == station_id,
                col(VariableMonitor.monitor_id).in_(ids),
            )
        )


async def remove_monitors_before(session: AsyncSession, station_id: str, since: datetime) -> None:
    """Monitors no complete report of all since ``since`` named: the station has them no more."""
    await session.exec(
        delete(VariableMonitor).where(
            col(VariableMonitor.station_id) == station_id,
            col(VariableMonitor.updated_at) < since,
        )
    )


async def remove_all_monitors(session: AsyncSession, station_id: str) -> None:
    await session.exec(delete(VariableMonitor).where(col(VariableMonitor.station_id) == station_id))


async def remove_all_but_hard_wired(session: AsyncSession, station_id: str) -> None:
    """After SetMonitoringBase FactoryDefault/HardWiredOnly: custom monitors are gone, and
    which preconfigured ones remain only a new report tells (2.1 marks hard-wired ones)."""
    await session.exec(
        delete(VariableMonitor).where(
            col(VariableMonitor.station_id) == station_id,
            func.coalesce(col(VariableMonitor.event_notification_type), "") != "HardWiredMonitor",
        )
    )


async def monitors(
    session: AsyncSession, station_id: str, limit: int, offset: int
) -> tuple[Sequence[VariableMonitor], int]:
    """One page of the station's monitors by id, and how many it has."""
    mine = col(VariableMonitor.station_id) == station_id
    query = select(VariableMonitor).where(mine).order_by(col(VariableMonitor.monitor_id))
    counted = select(func.count()).select_from(VariableMonitor).where(mine)
    rows = await session.exec(query.offset(offset).limit(limit))
    return rows.all(), (await session.exec(counted)).one()


async def setting_of(session: AsyncSession, station_id: str) -> MonitoringSetting:
    setting = await session.get(MonitoringSetting, station_id)
    setting = setting or MonitoringSetting(station_id=station_id)
    session.add(setting)
    return setting


async def severity_of(session: AsyncSession, station_id: str, monitor_id: int) -> int | None:
    if not fits_int32(monitor_id):
        return None
    monitor = await session.get(VariableMonitor, (station_id, monitor_id))
    return monitor.severity if monitor is not None else None


async def store_events(
    session: AsyncSession, station_id: str, rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Events as notified (those stored returned); one the station sends again (same id
    and time) is kept once."""
    rows = _storable(station_id, rows)
    if not rows:
        return rows
    dialect = (await session.connection()).dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table_of(StationEvent)).values(list(rows))
    await session.exec(
        statement.on_conflict_do_nothing(index_elements=["station_id", "event_id", "timestamp"])
    )
    return rows


async def events(
    session: AsyncSession, station_id: str, limit: int, offset: int
) -> tuple[Sequence[StationEvent], int]:
    """One page of the station's events, newest first, and how many it has."""
    mine = col(StationEvent.station_id) == station_id
    query = (
        select(StationEvent)
        .where(mine)
        .order_by(col(StationEvent.timestamp).desc(), col(StationEvent.id).desc())
    )
    counted = select(func.count()).select_from(StationEvent).where(mine)
    rows = await session.exec(query.offset(offset).limit(limit))
    return rows.all(), (await session.exec(counted)).one()


async def prune_events(session: AsyncSession, received_before: datetime) -> None:
    """Forget the events received before ``received_before`` (their retention is over)."""
    await session.exec(delete(StationEvent).where(col(StationEvent.received_at) < received_before))


# The 32-bit integer columns of monitors and events (a monitor's value is a float).
_INTEGER_COLUMNS = (
    "monitor_id",
    "event_id",
    "severity",
    "evse_id",
    "connector_id",
    "cause",
    "variable_monitoring_id",
)


def _storable(station_id: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose integers fit their 32-bit columns (the schemas bound none): a station
    sending a larger one has that entry skipped, not the whole message failed."""
    kept = [row for row in rows if all(fits_int32(row.get(name)) for name in _INTEGER_COLUMNS)]
    if len(kept) < len(rows):
        logger.warning(
            "%s: %d entries with integers out of range not stored",
            station_id,
            len(rows) - len(kept),
        )
    return kept
