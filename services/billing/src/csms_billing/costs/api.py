"""``/costs/{session_id}``: what a session costs so far (live) or cost (ended)."""

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from csms_api.auth import PartnerDep, sees_station
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_billing.api.deps import ServiceDep, SessionDep
from csms_billing.costs import reconcile
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
    tariff_id: str | None
    tariff_version: int | None
    total_energy: Number = Field(description="kWh")
    total_time: Number = Field(description="hours")
    total_parking_time: Number = Field(description="hours")
    computed_at: DateTime
    cdr_id: str | None = Field(description="the CDR standing for the ended session")
    flags: list[dict[str, Any]] = Field(
        default_factory=list,
        description="e.g. a 2.1 station's own cost that differs from this one (both figures)",
    )


@router.get("/{session_id}", response_model=SessionCost, responses=problem_responses(404))
async def get_cost(
    caller: PartnerDep,
    request: Request,
    session_id: Annotated[str, Path(max_length=36)],
    billing: ServiceDep,
    session: SessionDep,
) -> SessionCost:
    """The running cost of a live session, or the final cost of an ended one."""
    billed = await session.get(BilledSession, session_id)
    if billed is None or not await sees_station(request, caller, billed.station_id):
        raise Problem(404, f"billing knows no session {session_id}", kind="unknown-session")
    now = utc_now()
    # An ended session's cost is its standing CDR's: with late data, the corrected one.
    ended = billed.state == SessionState.ENDED
    priced = await sessions.priced(
        session, billed, billing.settings.currency, until=now, late=ended
    )
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
        tariff_id=billed.tariff_id,
        tariff_version=billed.tariff_version,
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
