"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request, params
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import CallerDep, require_station
from csms_api.problems import Problem
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.topology.models import Site

_STATE_KEY = "csms_smartcharging"


def bind_service(service: SmartChargingService) -> params.Depends:
    """A router dependency that makes ``service`` the one this request's routes use."""

    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, service)

    dependency: params.Depends = Depends(bind)
    return dependency


def get_service(request: Request) -> SmartChargingService:
    service: SmartChargingService = getattr(request.state, _STATE_KEY)
    return service


ServiceDep = Annotated[SmartChargingService, Depends(get_service)]


async def get_session(service: ServiceDep) -> AsyncIterator[AsyncSession]:
    async with service.factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SiteIdPath = Annotated[str, Path(max_length=64, examples=["depot-1"])]


async def get_site(caller: CallerDep, site_id: SiteIdPath, session: SessionDep) -> Site:
    """The site, if it exists and the caller may see it (404 otherwise)."""
    site = await session.get(Site, site_id) if caller.sees_site(site_id) else None
    if site is None:
        raise Problem(404, f"no site {site_id}", kind="unknown-site")
    return site


SiteDep = Annotated[Site, Depends(get_site)]
StationIdPath = Annotated[str, Path(max_length=48, examples=["CP-001"])]


async def visible_station(request: Request, caller: CallerDep, station_id: StationIdPath) -> str:
    """A station id the caller may see (404 for a station on another site)."""
    await require_station(request, caller, station_id)
    return station_id


StationIdDep = Annotated[str, Depends(visible_station)]
