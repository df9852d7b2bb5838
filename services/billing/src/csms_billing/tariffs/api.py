"""``/tariffs``: OCPI 2.2.1 tariffs, what they apply to, and their versions."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime, BaseModel, Field

from csms_api.auth import AdminDep, PartnerDep, require_network_wide
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_billing.api.deps import Limit, Offset, Page, ServiceDep, SessionDep, TariffIdPath
from csms_billing.ocpi import DateTime
from csms_billing.pricing.taxes import TaxRate
from csms_billing.tariffs import service
from csms_billing.tariffs.models import TariffRecord
from csms_billing.tariffs.ocpi import Tariff
from csms_billing.tariffs.service import StoredTariff, TariffPut, TariffRefused
from csms_billing.tariffs.targets import AppliesTo
from csms_core.db import utc_now

router = APIRouter(prefix="/tariffs", tags=["billing: tariffs"], route_class=ProblemRoute)


class VersionSummary(BaseModel):
    version: int
    valid_from: DateTime
    valid_to: DateTime | None = Field(description="exclusive; null: open-ended")
    last_updated: DateTime


class TariffOut(BaseModel):
    """A tariff: its OCPI object (of ``version``), what it applies to, every version."""

    tariff_id: str
    version: int
    tariff: Tariff
    applies_to: AppliesTo
    time_zone: str
    taxes: list[TaxRate]
    versions: list[VersionSummary]
    deleted_at: DateTime | None = None

    @classmethod
    def of(cls, stored: StoredTariff, version: int | None = None) -> "TariffOut":
        record = stored.record
        chosen = (
            stored.current(utc_now())
            if version is None
            else next(v for v in stored.versions if v.version == version)
        )
        return cls(
            tariff_id=record.tariff_id,
            version=chosen.version,
            tariff=service.ocpi_tariff(chosen),
            applies_to=AppliesTo.model_validate(record.applies_to),
            time_zone=record.time_zone,
            taxes=service.taxes_of(record),
            versions=[
                VersionSummary(
                    version=v.version,
                    valid_from=v.valid_from,
                    valid_to=v.valid_to,
                    last_updated=v.created_at,
                )
                for v in stored.versions
            ],
            deleted_at=record.deleted_at,
        )


def _refused(exc: TariffRefused) -> Problem:
    errors: list[dict[str, Any]] = [issue.wire() for issue in exc.issues]
    return Problem(422, str(exc), kind=exc.kind, errors=errors)


@router.put(
    "/{tariff_id}",
    response_model=TariffOut,
    response_model_exclude_none=True,
    responses={201: {"model": TariffOut, "description": "Created"}, **problem_responses(422)},
)
async def put_tariff(
    caller: AdminDep,
    tariff_id: TariffIdPath,
    body: TariffPut,
    response: Response,
    billing: ServiceDep,
    session: SessionDep,
) -> TariffOut:
    """Create a tariff or add a version of it (OCPI 2.2.1 Tariff object)."""
    require_network_wide(caller, "tariffs")
    created = await session.get(TariffRecord, tariff_id) is None
    try:
        stored, _ = await service.put_tariff(session, billing.settings, tariff_id, body, utc_now())
    except TariffRefused as exc:
        await session.rollback()
        raise _refused(exc) from None
    await session.commit()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return TariffOut.of(stored)


@router.get(
    "/{tariff_id}",
    response_model=TariffOut,
    response_model_exclude_none=True,
    responses=problem_responses(404),
)
async def get_tariff(
    caller: PartnerDep,
    tariff_id: TariffIdPath,
    session: SessionDep,
    version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> TariffOut:
    """A tariff: the version in force now, or the one asked for."""
    stored = await service.get_tariff(session, tariff_id)
    if stored is None:
        raise Problem(404, f"no tariff {tariff_id}", kind="unknown-tariff")
    if version is not None and all(v.version != version for v in stored.versions):
        raise Problem(404, f"tariff {tariff_id} has no version {version}", kind="unknown-version")
    return TariffOut.of(stored, version)


@router.get("", response_model=Page[TariffOut], response_model_exclude_none=True)
async def list_tariffs(
    caller: PartnerDep,
    session: SessionDep,
    offset: Offset = 0,
    limit: Limit = 50,
    date_from: Annotated[AwareDatetime | None, Query(description="updated at or after")] = None,
    date_to: Annotated[AwareDatetime | None, Query(description="updated before")] = None,
) -> Page[TariffOut]:
    """Tariffs not deleted, by id (OCPI: filtered by last update)."""
    found, total = await service.list_tariffs(
        session, offset=offset, limit=limit, date_from=date_from, date_to=date_to
    )
    return Page(items=[TariffOut.of(s) for s in found], total=total, limit=limit, offset=offset)


@router.delete(
    "/{tariff_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_tariff(caller: AdminDep, tariff_id: TariffIdPath, session: SessionDep) -> Response:
    """Price no new session with this tariff (its versions stay for the CDRs naming them)."""
    require_network_wide(caller, "tariffs")
    if not await service.delete_tariff(session, tariff_id, utc_now()):
        raise Problem(404, f"no tariff {tariff_id}", kind="unknown-tariff")
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
