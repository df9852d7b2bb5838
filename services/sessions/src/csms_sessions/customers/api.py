"""REST routes of 2.x customer information (OCPP 2.0.1 N09/N10): ask a station to report
and/or clear what it keeps about a customer, and read what it reported."""

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func
from sqlmodel import col, select

from csms_api.auth import OperatorDep
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import TimeoutQuery
from csms_sessions.configuration.api import ReportResponse, RequestIdPath, report_of, request_report
from csms_sessions.configuration.models import ReportRequest, ReportState
from csms_sessions.customers.models import CustomerInformationPart
from csms_sessions.customers.translate import CustomerInformationCommand, customer_information
from csms_sessions.db import utc_now
from csms_sessions.local_lists.service import forget_token
from csms_sessions.monitoring.api import version_2x
from csms_sessions.stations.models import Station

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/customer-information",
    tags=["customer information"],
    responses=problem_responses(404, 409, 422, 502, 504),
)
ACTION = "CustomerInformation"


class CustomerInformationResponse(ReportResponse):
    """The station's answer; what it keeps follows in NotifyCustomerInformation parts."""

    removed_from_local_list: bool = Field(
        default=False,
        description="the idToken was taken off the station's local list (cleared, Accepted)",
    )


class CustomerInformationOut(BaseModel):
    """A customer information request and what the station reported (its parts in order)."""

    request_id: int = Field(examples=[31])
    request: dict[str, object] = Field(
        examples=[{"report": True, "clear": False, "customerIdentifier": "customer-42"}],
        description="as sent (without requestId)",
    )
    requested_at: datetime
    status: str | None = Field(examples=["Accepted"], description="the station's answer")
    state: ReportState
    parts_received: int
    missing_seq_nos: list[int]
    data: str | None = Field(description="the parts' data in seqNo order; null: none came")
    completed_at: datetime | None


@router.post("")
async def request_customer_information(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: CustomerInformationCommand,
    timeout_s: TimeoutQuery = None,
) -> CustomerInformationResponse:
    """Ask the station to report and/or clear what it keeps about one customer.

    Cleared (Accepted) for an idToken: the token also leaves the station's local list."""
    version = await version_2x(sessions, session, station_id, ACTION)
    request = customer_information(body)
    answer = await request_report(sessions, station_id, version, timeout_s, ACTION, request)
    removed = False
    if body.clear and body.id_token is not None and answer.status == "Accepted":
        async with transaction(sessions.factory) as writer:
            removed = await forget_token(writer, station_id, body.id_token.id_token)
        if removed:
            sessions.local_lists.wake()
    return CustomerInformationResponse(**answer.model_dump(), removed_from_local_list=removed)


@router.get("", responses=problem_responses(404, 422))
async def list_customer_information(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    page: PageDep,
) -> Page[CustomerInformationOut]:
    """The customer information requests of a station, newest first, with what came."""
    if await session.get(Station, station_id) is None:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    mine = (col(ReportRequest.station_id) == station_id) & (col(ReportRequest.action) == ACTION)
    query = select(ReportRequest).where(mine).order_by(col(ReportRequest.request_id).desc())
    rows = (await session.exec(query.offset(page.offset).limit(page.limit))).all()
    total = (await session.exec(select(func.count()).select_from(ReportRequest).where(mine))).one()
    timeout = sessions.settings.report_part_timeout_s
    items = [await _out(session, row, timeout) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{request_id}", responses=problem_responses(404, 422))
async def get_customer_information(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    request_id: RequestIdPath,
) -> CustomerInformationOut:
    """One request: its state (complete only with every part) and the data reported."""
    report = await report_of(session, station_id, request_id, (ACTION,))
    return await _out(session, report, sessions.settings.report_part_timeout_s)


async def _out(
    session: SessionDep, report: ReportRequest, part_timeout_s: float
) -> CustomerInformationOut:
    query = (
        select(CustomerInformationPart)
        .where(
            col(CustomerInformationPart.station_id) == report.station_id,
            col(CustomerInformationPart.request_id) == report.request_id,
        )
        .order_by(col(CustomerInformationPart.seq_no))
    )
    parts = (await session.exec(query)).all()
    state = report.state(utc_now(), timedelta(seconds=part_timeout_s))
    if not report.request.get("report") and state is ReportState.PENDING:
        state = ReportState.COMPLETE  # cleared only: no report follows (N10)
    return CustomerInformationOut(
        request_id=report.request_id or 0,
        request=report.request,
        requested_at=report.requested_at,
        status=report.status,
        state=state,
        parts_received=report.parts_received,
        missing_seq_nos=report.missing_seq_nos(),
        data="".join(part.data for part in parts) if parts else None,
        completed_at=report.completed_at,
    )
