"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request, params
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import CallerDep, require_station

if TYPE_CHECKING:
    from csms_firmware.service import FirmwareService

_STATE_KEY = "csms_firmware"
Item = TypeVar("Item")


def bind_service(service: "FirmwareService") -> params.Depends:
    """A router dependency that makes ``service`` the one this request's routes use."""

    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, service)

    dependency: params.Depends = Depends(bind)
    return dependency


def get_service(request: Request) -> "FirmwareService":
    service: FirmwareService = getattr(request.state, _STATE_KEY)
    return service


ServiceDep = Annotated["FirmwareService", Depends(get_service)]


async def get_session(service: ServiceDep) -> AsyncIterator[AsyncSession]:
    async with service.factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
StationIdPath = Annotated[str, Path(max_length=48, examples=["CP-001"])]


async def visible_station_id(request: Request, caller: CallerDep, station_id: StationIdPath) -> str:
    """The path's station, if the caller may see it (404 for another site's station)."""
    await require_station(request, caller, station_id)
    return station_id


StationIdDep = Annotated[str, Depends(visible_station_id)]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="items per page")]
OffsetQuery = Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")]


class Page(BaseModel, Generic[Item]):
    """A page of a collection."""

    items: list[Item]
    total: int
    limit: int
    offset: int
