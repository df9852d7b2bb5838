"""REST: sites, groups, stations and EVSEs, schedules, operator overrides, non-EV load."""

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import delete
from sqlmodel import col, select

from csms_api.auth import OperatorDep, ViewerDep
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_core.db import utc_now
from csms_core.identity import assign_site, unassign_site
from csms_smartcharging.api.deps import ServiceDep, SessionDep, SiteDep
from csms_smartcharging.charging.store import store_site_load
from csms_smartcharging.topology.models import (
    ChargingGroup,
    EvseRating,
    LimitOverride,
    LimitSchedule,
    Site,
    SiteLoad,
    StationAssignment,
)
from csms_smartcharging.topology.schemas import (
    GroupIn,
    GroupOut,
    LoadIn,
    LoadOut,
    OverrideIn,
    OverrideOut,
    ScheduleIn,
    ScheduleOut,
    SiteIn,
    SiteOut,
    StationIn,
    StationOut,
)

router = APIRouter(tags=["smart charging: sites"], route_class=ProblemRoute)
SiteId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$", examples=["depot-1"])]
GroupId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
StationId = Annotated[str, Path(max_length=48, examples=["CP-001"])]
# Bounded to a database integer: a larger id is no schedule, not a database error.
ScheduleId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/sites")
async def list_sites(caller: ViewerDep, session: SessionDep) -> list[SiteOut]:
    """All sites (a site-limited caller: its own)."""
    query = select(Site).order_by(col(Site.site_id))
    if caller.sites is not None:
        query = query.where(col(Site.site_id).in_(sorted(caller.sites)))
    sites = await session.exec(query)
    return [SiteOut.model_validate(site, from_attributes=True) for site in sites]


@router.put("/sites/{site_id}", responses=problem_responses(422))
async def put_site(
    caller: OperatorDep,
    site_id: SiteId,
    body: SiteIn,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> SiteOut:
    """Create or replace a site and its grid connection limit."""
    if not caller.sees_site(site_id):
        raise Problem(403, f"site {site_id} is not one of this token's sites", kind="forbidden")
    site = await session.get(Site, site_id)
    response.status_code = 200 if site else 201
    site = site or Site(site_id=site_id)
    site.sqlmodel_update(body.model_dump())
    session.add(site)
    await session.commit()
    service.limits_changed(site_id)
    return SiteOut.model_validate(site, from_attributes=True)


@router.get("/sites/{site_id}", responses=problem_responses(404))
async def get_site(caller: ViewerDep, site: SiteDep) -> SiteOut:
    """One site."""
    return SiteOut.model_validate(site, from_attributes=True)


@router.delete("/sites/{site_id}", status_code=204, responses=problem_responses(404, 409))
async def delete_site(caller: OperatorDep, site: SiteDep, session: SessionDep) -> None:
    """Remove a site that no station is assigned to any more."""
    station = (
        await session.exec(
            select(StationAssignment).where(StationAssignment.site_id == site.site_id)
        )
    ).first()
    if station is not None:
        raise Problem(409, f"station {station.station_id} is still on the site", kind="site-in-use")
    for table in (ChargingGroup, LimitSchedule, LimitOverride, SiteLoad):
        await session.exec(delete(table).where(col(table.site_id) == site.site_id))
    await session.delete(site)
    await session.commit()


@router.get("/sites/{site_id}/groups", responses=problem_responses(404))
async def list_groups(caller: ViewerDep, site: SiteDep, session: SessionDep) -> list[GroupOut]:
    """The site's groups."""
    groups = await session.exec(select(ChargingGroup).where(ChargingGroup.site_id == site.site_id))
    return [GroupOut.model_validate(group, from_attributes=True) for group in groups]


@router.put("/sites/{site_id}/groups/{group_id}", responses=problem_responses(404, 409, 422))
async def put_group(
    caller: OperatorDep,
    site: SiteDep,
    group_id: GroupId,
    body: GroupIn,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> GroupOut:
    """Create or replace a group (a feeder, a charging group) with its own limit."""
    group = await session.get(ChargingGroup, group_id)
    if group is not None and group.site_id != site.site_id:
        raise Problem(409, f"group {group_id} belongs to site {group.site_id}", kind="group-taken")
    await _check_parent(session, site.site_id, group_id, body.parent_group_id)
    response.status_code = 200 if group else 201
    group = group or ChargingGroup(group_id=group_id, site_id=site.site_id)
    group.sqlmodel_update(body.model_dump())
    session.add(group)
    await session.commit()
    service.limits_changed(site.site_id)
    return GroupOut.model_validate(group, from_attributes=True)


async def _check_parent(
    session: SessionDep, site_id: str, group_id: str, parent_id: str | None
) -> None:
    """The parent is a group of the same site, and not the group itself or one below it."""
    seen = [group_id]
    while parent_id is not None:
        if parent_id in seen:
            cycle = " → ".join([*seen, parent_id])
            raise Problem(422, f"group cycle: {cycle}", kind="group-cycle")
        parent = await session.get(ChargingGroup, parent_id)
        if parent is None or parent.site_id != site_id:
            raise Problem(422, f"no group {parent_id} on site {site_id}", kind="unknown-group")
        seen.append(parent_id)
        parent_id = parent.parent_group_id


@router.delete(
    "/sites/{site_id}/groups/{group_id}", status_code=204, responses=problem_responses(404, 409)
)
async def delete_group(
    caller: OperatorDep, site: SiteDep, group_id: GroupId, session: SessionDep
) -> None:
    """Remove an empty group."""
    group = await session.get(ChargingGroup, group_id)
    if group is None or group.site_id != site.site_id:
        raise Problem(404, f"no group {group_id} on site {site.site_id}", kind="unknown-group")
    child = (
        await session.exec(select(ChargingGroup).where(ChargingGroup.parent_group_id == group_id))
    ).first()
    member = (
        await session.exec(select(StationAssignment).where(StationAssignment.group_id == group_id))
    ).first()
    if child is not None or member is not None:
        raise Problem(409, f"group {group_id} still has groups or stations", kind="group-in-use")
    await session.delete(group)
    await session.commit()


@router.get("/sites/{site_id}/stations", responses=problem_responses(404))
async def list_stations(caller: ViewerDep, site: SiteDep, session: SessionDep) -> list[StationOut]:
    """The stations on the site, with their EVSEs' ratings and wiring."""
    stations = await session.exec(
        select(StationAssignment).where(StationAssignment.site_id == site.site_id)
    )
    return [await _station_out(session, station) for station in stations]


@router.put("/sites/{site_id}/stations/{station_id}", responses=problem_responses(404, 409, 422))
async def put_station(
    caller: OperatorDep,
    site: SiteDep,
    station_id: StationId,
    body: StationIn,
    session: SessionDep,
    service: ServiceDep,
    response: Response,
) -> StationOut:
    """Assign a station to the site (optionally a group) with its EVSEs' ratings and wiring."""
    station = await session.get(StationAssignment, station_id)
    if station is not None and station.site_id != site.site_id:
        where = f"site {station.site_id}" if caller.sees_site(station.site_id) else "another site"
        raise Problem(
            409,
            f"station {station_id} is already on {where}; remove it there first",
            kind="station-in-other-site",
        )
    if body.group_id is not None:
        group = await session.get(ChargingGroup, body.group_id)
        if group is None or group.site_id != site.site_id:
            raise Problem(
                422, f"no group {body.group_id} on site {site.site_id}", kind="unknown-group"
            )
    response.status_code = 200 if station else 201
    station = station or StationAssignment(station_id=station_id, site_id=site.site_id)
    station.group_id, station.max_a = body.group_id, body.max_a
    session.add(station)
    await session.exec(delete(EvseRating).where(col(EvseRating.station_id) == station_id))
    for evse in body.evses:
        session.add(EvseRating(station_id=station_id, **evse.model_dump()))
    await assign_site(session, station_id, site.site_id)
    await session.commit()
    service.station_changed(station_id, site.site_id)
    return await _station_out(session, station)


@router.delete(
    "/sites/{site_id}/stations/{station_id}", status_code=204, responses=problem_responses(404)
)
async def delete_station(
    caller: OperatorDep,
    site: SiteDep,
    station_id: StationId,
    session: SessionDep,
    service: ServiceDep,
) -> None:
    """Take a station off the site."""
    station = await session.get(StationAssignment, station_id)
    if station is None or station.site_id != site.site_id:
        raise Problem(
            404, f"station {station_id} is not on site {site.site_id}", kind="unknown-station"
        )
    await session.exec(delete(EvseRating).where(col(EvseRating.station_id) == station_id))
    await session.delete(station)
    await unassign_site(session, station_id)
    await session.commit()
    service.station_changed(station_id, site.site_id)


async def _station_out(session: SessionDep, station: StationAssignment) -> StationOut:
    evses = await session.exec(
        select(EvseRating)
        .where(EvseRating.station_id == station.station_id)
        .order_by(col(EvseRating.evse_id))
    )
    return StationOut(
        station_id=station.station_id,
        site_id=station.site_id,
        group_id=station.group_id,
        max_a=station.max_a,
        evses=[evse.model_dump(exclude={"station_id"}) for evse in evses],
    )


@router.get("/sites/{site_id}/schedules", responses=problem_responses(404))
async def list_schedules(
    caller: ViewerDep, site: SiteDep, session: SessionDep
) -> list[ScheduleOut]:
    """The site's scheduled limits."""
    schedules = await session.exec(
        select(LimitSchedule).where(LimitSchedule.site_id == site.site_id)
    )
    return [ScheduleOut.model_validate(s, from_attributes=True) for s in schedules]


@router.post("/sites/{site_id}/schedules", status_code=201, responses=problem_responses(404, 422))
async def add_schedule(
    caller: OperatorDep, site: SiteDep, body: ScheduleIn, session: SessionDep, service: ServiceDep
) -> ScheduleOut:
    """Add a lower limit in force on some days between two times (e.g. 17:00-21:00)."""
    if body.group_id is not None:
        group = await session.get(ChargingGroup, body.group_id)
        if group is None or group.site_id != site.site_id:
            raise Problem(
                422, f"no group {body.group_id} on site {site.site_id}", kind="unknown-group"
            )
    schedule = LimitSchedule(site_id=site.site_id, **body.model_dump())
    session.add(schedule)
    await session.commit()
    service.limits_changed(site.site_id)
    return ScheduleOut.model_validate(schedule, from_attributes=True)


@router.delete(
    "/sites/{site_id}/schedules/{schedule_id}",
    status_code=204,
    responses=problem_responses(404),
)
async def delete_schedule(
    caller: OperatorDep,
    site: SiteDep,
    schedule_id: ScheduleId,
    session: SessionDep,
    service: ServiceDep,
) -> None:
    """Remove a scheduled limit."""
    schedule = await session.get(LimitSchedule, schedule_id)
    if schedule is None or schedule.site_id != site.site_id:
        raise Problem(404, f"no schedule {schedule_id}", kind="unknown-schedule")
    await session.delete(schedule)
    await session.commit()
    service.limits_changed(site.site_id)


@router.post("/sites/{site_id}/limit-override", responses=problem_responses(404, 422))
async def set_override(
    caller: OperatorDep, site: SiteDep, body: OverrideIn, session: SessionDep, service: ServiceDep
) -> OverrideOut:
    """Set the grid operator's limit now (until ``until``, or until removed); lowest limit wins."""
    override = await session.get(LimitOverride, site.site_id) or LimitOverride(site_id=site.site_id)
    override.sqlmodel_update(body.model_dump())
    override.set_at = utc_now()
    session.add(override)
    await session.commit()
    service.limits_changed(site.site_id, "limit_changed")
    return OverrideOut.model_validate(override, from_attributes=True)


@router.delete("/sites/{site_id}/limit-override", status_code=204, responses=problem_responses(404))
async def clear_override(
    caller: OperatorDep, site: SiteDep, session: SessionDep, service: ServiceDep
) -> None:
    """Remove the operator's limit."""
    await session.exec(delete(LimitOverride).where(col(LimitOverride.site_id) == site.site_id))
    await session.commit()
    service.limits_changed(site.site_id, "limit_changed")


@router.put("/sites/{site_id}/load", responses=problem_responses(404, 422))
async def put_load(
    caller: OperatorDep, site: SiteDep, body: LoadIn, session: SessionDep, service: ServiceDep
) -> LoadOut:
    """Report the site's measured non-EV load (subtracted from its limit)."""
    load = await store_site_load(session, site, body)
    await session.commit()
    service.limits_changed(site.site_id, "site_load")
    return LoadOut(site_id=site.site_id, load_a=load.load_a, measured_at=load.measured_at)
