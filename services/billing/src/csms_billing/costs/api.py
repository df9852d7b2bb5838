"""``/costs/{session_id}``: what a session costs so far (live) or cost (ended)."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from csms_api.auth import OperatorDep, PartnerDep, Principal, sees_station
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_billing.api.deps import ServiceDep, SessionDep
from csms_billing.costs import reconcile
from csms_billing.costs.change import change_tariff
from csms_billing.ocpi import DateTime, Number, Price
from csms_billing.pricing.cost import CostType
from csms_billing.sessions import service as sessions
from csms_billing.sessions.models import BilledSession, SessionState
from csms_core.db import utc_now

_HOURS = Decimal("0.000001")
router = APIRouter(prefix="/costs", tags=["billing: costs"], route_class=ProblemRoute)


class SessionCost(BaseModel):
    """The cost the engine gives the session now: the same figure the station is sent."""

    session_id: str
    station_id: str
    state: str = Field(examples=["active", "ended"])
    currency: str
    total_cost: Price | None = Field(description="null: no tariff applies, the cost is unknown")
    type_of_cost: CostType
    tariff_id: str | None = Field(description="the tariff pricing the session now")
    tariff_version: int | None
    tariff_changes: list["TariffChangeOut"] = Field(
        default_factory=list, description="the tariffs it was changed to while it ran"
    )
    total_energy: Number = Field(description="kWh")
    total_time: Number = Field(description="hours")
    total_parking_time: Number = Field(description="hours")
    computed_at: DateTime
    cdr_id: str | None = Field(description="the CDR standing for the ended session")
    flags: list[dict[str, Any]] = Field(
        default_factory=list,
        description="e.g. a 2.1 station's own cost that differs from this one (both figures)",
    )


class TariffChangeOut(BaseModel):
    """From ``at`` on, this tariff version prices the session."""

    at: DateTime
    tariff_id: str
    tariff_version: int
    station_status: str | None = Field(
        description="what the 2.1 station answered ChangeTransactionTariff (Accepted; "
        "NotSupported: no local cost calculator); null: not a 2.1 station, not asked"
    )


class TariffChangeIn(BaseModel):
    tariff_id: str = Field(min_length=1, max_length=36, examples=["evening"])


SessionIdPath = Annotated[str, Path(max_length=36)]


@router.get("/{session_id}", response_model=SessionCost, responses=problem_responses(404))
async def get_cost(
    caller: PartnerDep,
    request: Request,
    session_id: SessionIdPath,
    billing: ServiceDep,
    session: SessionDep,
) -> SessionCost:
    """The running cost of a live session, or the final cost of an ended one."""
    billed = await _visible(request, caller, session, session_id)
    return await _cost(billing, session, billed)


@router.put(
    "/{session_id}/tariff",
    response_model=SessionCost,
    responses=problem_responses(404, 409, 422, 502, 504),
)
async def change_session_tariff(
    caller: OperatorDep,
    request: Request,
    session_id: SessionIdPath,
    body: TariffChangeIn,
    billing: ServiceDep,
    session: SessionDep,
) -> SessionCost:
    """Price a live session with another tariff from now on (2.1: ChangeTransactionTariff)."""
    billed = await _visible(request, caller, session, session_id)
    await change_tariff(billing, session, billed, body.tariff_id, utc_now())
    return await _cost(billing, session, billed)


async def _visible(
    request: Request, caller: Principal, session: SessionDep, session_id: str
) -> BilledSession:
    """The session, 404 as if unknown for a caller who may not see its station."""
    billed = await session.get(BilledSession, session_id)
    if billed is None or not await sees_station(request, caller, billed.station_id):
        raise Problem(404, f"billing knows no session {session_id}", kind="unknown-session")
    return billed


async def _cost(billing: ServiceDep, session: SessionDep, billed: BilledSession) -> SessionCost:
    now = utc_now()
    # An ended session's cost is its standing CDR's: priced from what that CDR was (the
    # samples read after it count only in a correction).
    priced = await sessions.priced(session, billed, billing.settings.currency, until=now)
    cost = priced.cost
    total = None
    if priced.tariff is not None:
        excl, incl = cost.rounded(cost.total)
        total = Price(excl_vat=excl, incl_vat=incl)
    return SessionCost(
        session_id=billed.session_id,
        station_id=billed.station_id,
        state=billed.state,
        currency=cost.currency,
        total_cost=total,
        type_of_cost=cost.type_of_cost,
        tariff_id=priced.version.tariff_id if priced.version else None,
        tariff_version=priced.version.version if priced.version else None,
        tariff_changes=[
            TariffChangeOut(
                at=change.at,
                tariff_id=change.tariff_id,
                tariff_version=change.tariff_version,
                station_status=change.station_status,
            )
            for change in await sessions.tariff_changes(session, billed.session_id)
        ],
        total_energy=cost.energy_wh / 1000,
        total_time=(cost.time_s / 3600).quantize(_HOURS),
        total_parking_time=(cost.parking_s / 3600).quantize(_HOURS),
        computed_at=now,
        cdr_id=billed.cdr_id,
        flags=_flags(billed, priced),
    )


def _flags(billed: BilledSession, priced: sessions.Priced) -> list[dict[str, Any]]:
    """What disagrees: an ended session's kept comparison, a live one's done now."""
    if billed.state == SessionState.ENDED or priced.tariff is None:
        return [billed.cost_mismatch] if billed.cost_mismatch else []
    live = reconcile.station_mismatch(billed, priced.cost)
    return [] if live is None else [live.wire() | {"at": billed.station_cost_at}]
