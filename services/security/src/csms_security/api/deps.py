"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.auth import CallerDep, Principal, require_station, visible_stations
from csms_api.deps import ServiceBinding
from csms_api.problems import Problem
from csms_ocpp.station_id import InvalidStationId, parse_station_id
from csms_security.service import SecurityService

_binding = ServiceBinding[SecurityService]("csms_security")
Item = TypeVar("Item")


bind_service, get_service = _binding.bind, _binding.get
ServiceDep = Annotated[SecurityService, Depends(get_service)]
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
    offset: int = Field(default=0, ge=0, le=10_000_000, description="items to skip")


PageDep = Annotated[PageParams, Query()]


class Page(BaseModel, Generic[Item]):
    items: list[Item]
    total: int
    limit: int
    offset: int


M = TypeVar("M", bound=BaseModel)


def visible_to(
    caller: Principal, query: SelectOfScalar[Any], station_id: Any
) -> SelectOfScalar[Any]:
    """``query`` limited to the stations a site-limited caller sees (``station_id``: the
    column naming the station)."""
    visible = visible_stations(caller)
    return query if visible is None else query.where(station_id.in_(visible))


async def paged(
    session: AsyncSession,
    query: SelectOfScalar[Any],
    page: PageParams,
    model: type[M],
    order: Any,
) -> Page[M]:
    """One page of ``query`` (ordered by ``order``) as ``model`` items, with the total."""
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = await session.exec(query.order_by(order).offset(page.offset).limit(page.limit))
    items = [model.model_validate(row, from_attributes=True) for row in rows.all()]
    return Page[M](items=items, total=total, limit=page.limit, offset=page.offset)
