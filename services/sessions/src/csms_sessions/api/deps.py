"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import CallerDep, require_station
from csms_api.deps import ServiceBinding
from csms_api.problems import Problem
from csms_ocpp.station_id import InvalidStationId, parse_station_id
from csms_sessions.service import SessionsService

_binding = ServiceBinding[SessionsService]("csms_sessions")


bind_service, get_service = _binding.bind, _binding.get
ServiceDep = Annotated[SessionsService, Depends(get_service)]
SessionDep = Annotated[AsyncSession, Depends(_binding.session)]


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
