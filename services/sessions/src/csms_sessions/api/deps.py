"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request, params
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import CallerDep, require_station
from csms_api.problems import Problem
from csms_ocpp.station_id import InvalidStationId, parse_station_id
from csms_sessions.service import SessionsService

_STATE_KEY = "csms_sessions"


def bind_service(service: SessionsService) -> params.Depends:
    """A router dependency that makes ``service`` the one this request's routes use."""

    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, service)

    dependency: params.Depends = Depends(bind)
    return dependency


def get_service(request: Request) -> SessionsService:
    service: SessionsService = getattr(request.state, _STATE_KEY)
    return service


ServiceDep = Annotated[SessionsService, Depends(get_service)]


async def get_session(service: ServiceDep) -> AsyncIterator[AsyncSession]:
    async with service.factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def valid_station_id(
    request: Request,
    caller: CallerDep,
    station_id: Annotated[str, Path(examples=["CP-001"], description="OCPP station identity")],
) -> str:
    """A well-formed station id the caller may see (404 for another site's station)."""
    # The path is percent-decoded already; a '%' left would be decoded twice.
    if "%" in station_id:
        raise Problem(422, "station id may not contain '%'", kind="invalid-station-id")
    try:
        parsed = parse_station_id(station_id)
    except InvalidStationId as exc:
        raise Problem(422, str(exc), kind="invalid-station-id") from exc
    await require_station(request, caller, parsed)
    return parsed


StationIdDep = Annotated[str, Depends(valid_station_id)]


class PageParams(BaseModel):
    limit: int = Field(default=50, ge=1, le=500, description="items per page")
    # Bounded: a larger offset is no page anyone reads, and past 64 bits it would reach
    # the database as an error.
    offset: int = Field(default=0, ge=0, le=10_000_000, description="items to skip")


PageDep = Annotated[PageParams, Query()]
