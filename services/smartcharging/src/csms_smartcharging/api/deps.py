"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from typing import Annotated

from fastapi import Depends, Path, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import CallerDep, require_station
from csms_api.deps import ServiceBinding
from csms_api.problems import Problem
from csms_smartcharging.service import SmartChargingService
from csms_smartcharging.topology.models import Site

_binding = ServiceBinding[SmartChargingService]("csms_smartcharging")


bind_service, get_service = _binding.bind, _binding.get
ServiceDep = Annotated[SmartChargingService, Depends(get_service)]
SessionDep = Annotated[AsyncSession, Depends(_binding.session)]
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
