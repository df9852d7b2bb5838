"""REST: the stations as the firmware service knows them, and sites' time zones."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import update
from sqlmodel import col, func, select

from csms_api.auth import AdminDep, ViewerDep, require_network_wide, visible_stations
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_firmware.api.deps import (
    LimitQuery,
    OffsetQuery,
    Page,
    ServiceDep,
    SessionDep,
    StationIdDep,
)
from csms_firmware.stations.models import FirmwareStation, Site
from csms_firmware.stations.schemas import FirmwareSiteIn, FirmwareSiteOut, FirmwareStationOut

router = APIRouter(prefix="/firmware", tags=["firmware stations"])
SiteIdPath = Annotated[str, Path(max_length=64, examples=["depot-1"])]


async def get_station(station_id: StationIdDep, session: SessionDep) -> FirmwareStation:
    station = await session.get(FirmwareStation, station_id)
    if station is None:
        raise Problem(404, f"no station {station_id} has booted yet", kind="unknown-station")
    return station


StationDep = Annotated[FirmwareStation, Depends(get_station)]


@router.get("/stations")
async def list_stations(
    caller: ViewerDep,
    session: SessionDep,
    vendor: str | None = None,
    model: str | None = None,
    firmware_version: str | None = None,
    site_id: str | None = None,
    limit: LimitQuery = 100,
    offset: OffsetQuery = 0,
) -> Page[FirmwareStationOut]:
    """Stations with the firmware their last boot reported."""
    query = select(FirmwareStation)
    visible = visible_stations(caller)
    if visible is not None:
        query = query.where(col(FirmwareStation.station_id).in_(visible))
    for column, value in (
        (FirmwareStation.vendor, vendor),
        (FirmwareStation.model, model),
        (FirmwareStation.firmware_version, firmware_version),
        (FirmwareStation.site_id, site_id),
    ):
        if value is not None:
            query = query.where(col(column) == value)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(
        query.order_by(col(FirmwareStation.station_id)).limit(limit).offset(offset)
    )
    return Page(
        items=[FirmwareStationOut.of(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/stations/{station_id}", responses=problem_responses(404))
async def read_station(caller: ViewerDep, station: StationDep) -> FirmwareStationOut:
    """One station."""
    return FirmwareStationOut.of(station)


@router.put("/sites/{site_id}", responses=problem_responses(404, 422))
async def put_site(
    caller: AdminDep, site_id: SiteIdPath, body: FirmwareSiteIn, service: ServiceDep
) -> FirmwareSiteOut:
    """Create or change a site's time zone (and which stations are on it)."""
    require_network_wide(caller, "sites' time zones")
    async with transaction(service.factory) as session:
        site = await session.get(Site, site_id) or Site(site_id=site_id)
        site.timezone, site.name = body.timezone, body.name or site.name
        session.add(site)
        if body.station_ids is not None:
            known = set(
                await session.exec(
                    select(FirmwareStation.station_id).where(
                        col(FirmwareStation.station_id).in_(body.station_ids)
                    )
                )
            )
            unknown = sorted(set(body.station_ids) - known)
            if unknown:
                raise Problem(
                    404,
                    f"{len(unknown)} stations never booted: {', '.join(unknown[:20])}",
                    kind="unknown-station",
                    station_ids=unknown[:100],
                )
            await session.exec(
                update(FirmwareStation)
                .where(col(FirmwareStation.station_id).in_(body.station_ids))
                .values(site_id=site_id)
            )
        count = (
            await session.exec(select(func.count()).where(FirmwareStation.site_id == site_id))
        ).one()
    return FirmwareSiteOut.of(site, count)


@router.get("/sites")
async def list_sites(
    caller: ViewerDep, session: SessionDep, limit: LimitQuery = 100, offset: OffsetQuery = 0
) -> Page[FirmwareSiteOut]:
    """Sites and their time zones (a site-limited caller's sites only)."""
    query = select(Site)
    if caller.sites is not None:
        query = query.where(col(Site.site_id).in_(sorted(caller.sites)))
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    sites = list(await session.exec(query.order_by(col(Site.site_id)).limit(limit).offset(offset)))
    items = []
    for site in sites:
        on_site = select(func.count()).where(FirmwareStation.site_id == site.site_id)
        items.append(FirmwareSiteOut.of(site, (await session.exec(on_site)).one()))
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.delete("/sites/{site_id}", status_code=204, responses=problem_responses(404))
async def delete_site(caller: AdminDep, site_id: SiteIdPath, service: ServiceDep) -> Response:
    """Remove a site; its stations keep UTC windows from then on."""
    require_network_wide(caller, "sites' time zones")
    async with transaction(service.factory) as session:
        site = await session.get(Site, site_id)
        if site is None:
            raise Problem(404, f"no site {site_id}", kind="unknown-site")
        await session.exec(
            update(FirmwareStation)
            .where(col(FirmwareStation.site_id) == site_id)
            .values(site_id=None)
        )
        await session.delete(site)
    return Response(status_code=204)
