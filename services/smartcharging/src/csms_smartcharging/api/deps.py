"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request, params
from sqlmodel.ext.asyncio.session import AsyncSession

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


async def get_site(site_id: SiteIdPath, session: SessionDep) -> Site:
    site = await session.get(Site, site_id)
    if site is None:
        raise Problem(404, f"no site {site_id}", kind="unknown-site")
    return site


SiteDep = Annotated[Site, Depends(get_site)]
