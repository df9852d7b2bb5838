"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from typing import TYPE_CHECKING, Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import CallerDep, require_station
from csms_api.deps import ServiceBinding

if TYPE_CHECKING:
    from csms_firmware.service import FirmwareService

_binding = ServiceBinding["FirmwareService"]("csms_firmware")
Item = TypeVar("Item")


bind_service, get_service = _binding.bind, _binding.get
ServiceDep = Annotated["FirmwareService", Depends(get_service)]
SessionDep = Annotated[AsyncSession, Depends(_binding.session)]
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
