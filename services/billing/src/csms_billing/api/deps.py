"""Dependencies of the REST routes, as ``Annotated`` aliases."""

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Path, Query
from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.deps import ServiceBinding
from csms_billing.service import BillingService

_binding = ServiceBinding[BillingService]("csms_billing")
Item = TypeVar("Item")


bind_service, get_service = _binding.bind, _binding.get
ServiceDep = Annotated[BillingService, Depends(get_service)]
SessionDep = Annotated[AsyncSession, Depends(_binding.session)]
TariffIdPath = Annotated[str, Path(min_length=1, max_length=36, examples=["standard"])]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


class Page(BaseModel, Generic[Item]):
    """A page of a collection: ``total`` items in all, ``limit`` at most from ``offset``."""

    items: list[Item]
    total: int
    limit: int
    offset: int
