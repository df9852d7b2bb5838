"""Reading and managing stations for the REST API."""

from collections.abc import Sequence

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_sessions.stations.models import ConnectorStatus, Station


async def list_stations(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    online: bool | None = None,
    only: SelectOfScalar[str] | None = None,
) -> tuple[Sequence[Station], int]:
    """One page of stations by id, and how many match in all (of ``only``'s ids, if given)."""
    query = select(Station)
    counted = select(func.count()).select_from(Station)
    if online is not None:
        query = query.where(col(Station.online) == online)
        counted = counted.where(col(Station.online) == online)
    if only is not None:
        query = query.where(col(Station.station_id).in_(only))
        counted = counted.where(col(Station.station_id).in_(only))
    stations = await session.exec(
        query.order_by(col(Station.station_id)).offset(offset).limit(limit)
    )
    total = await session.exec(counted)
    return stations.all(), total.one()


async def connectors_of(session: AsyncSession, station_id: str) -> Sequence[ConnectorStatus]:
    query = (
        select(ConnectorStatus)
        .where(col(ConnectorStatus.station_id) == station_id)
        .order_by(col(ConnectorStatus.evse_id), col(ConnectorStatus.connector_id))
    )
    return (await session.exec(query)).all()


async def register(session: AsyncSession, station_id: str) -> Station:
    """Mark the station registered (creating it): its next boot is Accepted."""
    station = await session.get(Station, station_id) or Station(station_id=station_id)
    station.registered = True
    session.add(station)
    return station


async def forget(session: AsyncSession, station_id: str) -> bool:
    """Delete the station and its connector statuses; False if there was no such station."""
    station = await session.get(Station, station_id)
    if station is None:
        return False
    await session.exec(delete(ConnectorStatus).where(col(ConnectorStatus.station_id) == station_id))
    await session.delete(station)
    return True
