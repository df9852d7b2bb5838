"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from collections.abc import AsyncIterator
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query, Request, params
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_billing.service import BillingService

_STATE_KEY = "csms_billing"
Item = TypeVar("Item")


def bind_service(service: BillingService) -> params.Depends:
    """A router dependency that makes ``service`` the one this request's routes use."""

    def bind(request: Request) -> None:
        setattr(request.state, _STATE_KEY, service)

    dependency: params.Depends = Depends(bind)
    return dependency


def get_service(request: Request) -> BillingService:
    service: BillingService = getattr(request.state, _STATE_KEY)
    return service


ServiceDep = Annotated[BillingService, Depends(get_service)]


async def get_session(service: ServiceDep) -> AsyncIterator[AsyncSession]:
    async with service.factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TariffIdPath = Annotated[str, Path(min_length=1, max_length=36, examples=["standard"])]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


class Page(BaseModel, Generic[Item]):
    """A page of a collection: ``total`` items in all, ``limit`` at most from ``offset``."""

    items: list[Item]
    total: int
    limit: int
    offset: int
