"""Reading what one allocation of a site needs, in one snapshot; storing a site's load."""

from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_core.db import utc_now
from csms_core.events import SiteLoad as MeasuredLoad
from csms_smartcharging.charging.models import ChargingSession, EvseLimit, StationLimit
from csms_smartcharging.charging.planner import SiteRows
from csms_smartcharging.topology.models import (
    ChargingGroup,
    EvseRating,
    LimitOverride,
    LimitSchedule,
    Site,
    SiteLoad,
    StationAssignment,
)


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    rows: SiteRows
    groups: list[ChargingGroup]
    schedules: list[LimitSchedule]
    override: LimitOverride | None
    load: SiteLoad | None


async def site_snapshot(session: AsyncSession, site: Site) -> SiteSnapshot:
    site_id = site.site_id
    stations = list(
        await session.exec(select(StationAssignment).where(StationAssignment.site_id == site_id))
    )
    station_ids = [station.station_id for station in stations]
    in_site = col(EvseRating.station_id).in_(station_ids)
    rows = SiteRows(
        site=site,
        stations=stations,
        evses=list(await session.exec(select(EvseRating).where(in_site))),
        sessions=list(
            await session.exec(
                select(ChargingSession).where(col(ChargingSession.station_id).in_(station_ids))
            )
        ),
        station_limits=list(
            await session.exec(
                select(StationLimit).where(col(StationLimit.station_id).in_(station_ids))
            )
        ),
        evse_limits=list(
            await session.exec(select(EvseLimit).where(col(EvseLimit.station_id).in_(station_ids)))
        ),
    )
    return SiteSnapshot(
        rows=rows,
        groups=list(
            await session.exec(select(ChargingGroup).where(ChargingGroup.site_id == site_id))
        ),
        schedules=list(
            await session.exec(select(LimitSchedule).where(LimitSchedule.site_id == site_id))
        ),
        override=await session.get(LimitOverride, site_id),
        load=await session.get(SiteLoad, site_id),
    )


async def site_of_station(session: AsyncSession, station_id: str) -> str | None:
    assignment = await session.get(StationAssignment, station_id)
    return assignment.site_id if assignment is not None else None


async def store_site_load(session: AsyncSession, site: Site, measured: MeasuredLoad) -> SiteLoad:
    """Keep a measurement of the site's non-EV load (REST or ``csms.site-load``); one older
    than the one kept (a late or replayed message) changes nothing."""
    at = measured.measured_at or utc_now()
    load = await session.get(SiteLoad, site.site_id)
    if load is not None and load.measured_at > at:
        return load
    load = load or SiteLoad(site_id=site.site_id)
    load.load_a, load.measured_at = measured.per_phase_a(site.voltage_v, site.phases), at
    session.add(load)
    return load
