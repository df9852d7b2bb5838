"""REST: the current allocation, a site's load against its limit, and what stations apply."""

import itertools
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field
from sqlmodel import col, select

from csms_api.auth import OperatorDep, ViewerDep
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_core.db import utc_now
from csms_core.router import CommandOutcome, CommandResult, StationOffline
from csms_smartcharging.allocation import AllocationError
from csms_smartcharging.api.deps import ServiceDep, SessionDep, SiteDep, StationIdDep
from csms_smartcharging.charging.allocator import SitePlan, measured_per_phase
from csms_smartcharging.charging.models import EvseLimit, LoadSample, ProfileReport
from csms_smartcharging.topology.limits import finite

router = APIRouter(tags=["smart charging: allocation"], route_class=ProblemRoute)
_request_ids = itertools.count(1)


class SessionAllocation(BaseModel):
    session_id: str
    station_id: str
    evse_id: int
    limit_a: float = Field(description="0: paused")
    paused: bool
    fixed: bool = Field(description="counted at its maximum: its station refused its profile")
    phases: list[int] = Field(description="site phases it loads (0 = L1)")
    min_a: float
    max_a: float
    weight: float
    measured_a: float | None
    sent_a: float | None = Field(description="the limit the station last got")
    outcome: str | None = Field(description="how the station took it")


class PhaseTotals(BaseModel):
    limit_a: list[float | None] = Field(description="per phase; null: no limit")
    non_ev_a: list[float]
    available_a: list[float | None]
    allocated_a: list[float]
    measured_a: list[float]


class SiteAllocation(BaseModel):
    site_id: str
    at: datetime
    sessions: list[SessionAllocation]
    site: PhaseTotals


def _allocation_body(plan: SitePlan) -> SiteAllocation:
    rows = plan.snapshot.rows
    sessions = {s.session_id: s for s in rows.sessions}
    sent = {(limit.station_id, limit.evse_id): limit for limit in rows.evse_limits}
    body = []
    for demand in plan.demands:
        grant = plan.allocation.grants[demand.session_id]
        charging = sessions[demand.session_id]
        last = sent.get((charging.station_id, charging.evse_id))
        body.append(
            SessionAllocation(
                session_id=demand.session_id,
                station_id=charging.station_id,
                evse_id=charging.evse_id,
                limit_a=grant.limit_a,
                paused=grant.paused,
                fixed=grant.fixed,
                phases=list(demand.phases),
                min_a=demand.min_a,
                max_a=demand.max_a,
                weight=round(demand.weight, 3),
                measured_a=charging.current_a,
                sent_a=last.limit_a if last else None,
                outcome=last.outcome if last else None,
            )
        )
    node, usage = plan.nodes[0], plan.allocation.usage[plan.site.site_id]
    totals = PhaseTotals(
        limit_a=[finite(v) for v in node.limit_a],
        non_ev_a=list(node.base_load_a),
        available_a=[finite(v) for v in usage.available_a],
        allocated_a=[round(v, 1) for v in usage.used_a],
        measured_a=measured_per_phase(plan),
    )
    return SiteAllocation(site_id=plan.site.site_id, at=plan.at, sessions=body, site=totals)


@router.get("/sites/{site_id}/allocation", responses=problem_responses(404, 422))
async def get_allocation(caller: ViewerDep, site: SiteDep, service: ServiceDep) -> SiteAllocation:
    """The current limit of every session on the site, and per-phase totals against the limit."""
    try:
        plan = await service.allocator.plan(site.site_id)
    except AllocationError as exc:
        raise Problem(422, str(exc), kind="invalid-topology") from exc
    if plan is None:
        raise Problem(404, f"no site {site.site_id}", kind="unknown-site")
    return _allocation_body(plan)


class LoadPoint(BaseModel):
    at: datetime
    limit_a: list[float | None]
    non_ev_a: list[float]
    allocated_a: list[float]
    measured_a: list[float]
    sessions: int
    paused: int


@router.get("/sites/{site_id}/load", responses=problem_responses(404, 422))
async def get_load(
    caller: ViewerDep,
    site: SiteDep,
    session: SessionDep,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[LoadPoint]:
    """The site's recent load against its limit, one point per allocation (default: last hour)."""
    end = end or utc_now()
    start = start or end - timedelta(hours=1)
    if start > end:
        raise Problem(422, "from must not be after to", kind="invalid-request")
    samples = await session.exec(
        select(LoadSample)
        .where(
            LoadSample.site_id == site.site_id,
            col(LoadSample.at) >= start,
            col(LoadSample.at) <= end,
        )
        .order_by(col(LoadSample.at))
        .limit(limit)
    )
    return [LoadPoint.model_validate(sample, from_attributes=True) for sample in samples]


class StationLimitOut(BaseModel):
    evse_id: int
    session_id: str | None
    purpose: str
    limit_a: float
    phases: int
    outcome: str
    accepted: bool
    sent_at: datetime


@router.get("/stations/{station_id}/charging-limits")
async def get_station_limits(
    caller: ViewerDep, station_id: StationIdDep, session: SessionDep
) -> list[StationLimitOut]:
    """The limits last sent to the station's EVSEs and how the station took them."""
    limits = await session.exec(
        select(EvseLimit).where(EvseLimit.station_id == station_id).order_by(col(EvseLimit.evse_id))
    )
    return [StationLimitOut.model_validate(limit, from_attributes=True) for limit in limits]


class StationAnswer(BaseModel):
    outcome: CommandOutcome
    payload: dict[str, Any] | None = None
    error_code: str | None = None
    error_description: str = ""


def _answer(result: CommandResult) -> StationAnswer:
    if result.outcome in (CommandOutcome.TIMEOUT, CommandOutcome.OFFLINE):
        raise Problem(504, f"{result.action}: {result.outcome.value}", kind="station-no-answer")
    return StationAnswer(
        outcome=result.outcome,
        payload=result.payload,
        error_code=result.error_code,
        error_description=result.error_description,
    )


@router.get("/stations/{station_id}/composite-schedule", responses=problem_responses(409, 422, 504))
async def get_composite_schedule(
    caller: OperatorDep,
    station_id: StationIdDep,
    service: ServiceDep,
    evse_id: Annotated[int, Query(ge=0, le=1000)] = 0,
    duration: Annotated[int, Query(ge=1, le=86_400)] = 3600,
) -> StationAnswer:
    """Ask the station what it will apply (GetCompositeSchedule, in A)."""
    try:
        return _answer(await service.composite_schedule(station_id, evse_id, duration))
    except StationOffline as exc:
        raise Problem(409, f"station {station_id} is offline", kind="station-offline") from exc


@router.post(
    "/stations/{station_id}/charging-profiles/report", responses=problem_responses(409, 504)
)
async def request_profile_report(
    caller: OperatorDep, station_id: StationIdDep, service: ServiceDep
) -> StationAnswer:
    """Ask a 2.x station for its profiles (GetChargingProfiles; it reports them back)."""
    try:
        return _answer(await service.request_profiles(station_id, next(_request_ids)))
    except StationOffline as exc:
        raise Problem(409, f"station {station_id} is offline", kind="station-offline") from exc
    except ValueError as exc:
        raise Problem(409, str(exc), kind="not-in-this-version") from exc


class ProfileReportOut(BaseModel):
    evse_id: int
    request_id: int
    source: str
    profiles: list[dict[str, Any]]
    received_at: datetime


@router.get("/stations/{station_id}/charging-profiles")
async def list_profile_reports(
    caller: ViewerDep, station_id: StationIdDep, session: SessionDep
) -> list[ProfileReportOut]:
    """The profiles the station last reported (ReportChargingProfiles), newest first."""
    reports = await session.exec(
        select(ProfileReport)
        .where(ProfileReport.station_id == station_id)
        .order_by(col(ProfileReport.received_at).desc())
        .limit(100)
    )
    return [ProfileReportOut.model_validate(report, from_attributes=True) for report in reports]
