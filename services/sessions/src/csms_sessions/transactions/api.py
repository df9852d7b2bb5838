"""REST routes of charging sessions: list, read, meter values, a station's sessions."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from csms_api.auth import PartnerDep, Principal, ViewerDep, sees_station, visible_stations
from csms_api.problems import Problem, problem_responses
from csms_sessions.api.deps import PageDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.metering import service as metering
from csms_sessions.transactions.flags import FlagReason
from csms_sessions.transactions.models import (
    ChargingSession,
    MessageDisposition,
    SessionMessage,
    SessionState,
)

router = APIRouter(route_class=DocumentedRoute, tags=["sessions"])

SessionIdPath = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f-]{36}$",
        examples=["6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"],
        description="the session id",
    ),
]
StateQuery = Annotated[SessionState | None, Query(description="active or ended")]


class SessionFlagOut(BaseModel):
    """Why a session needs a second look (docs/sessions.md)."""

    reason: FlagReason
    detail: str = Field(examples=["transaction 43 started on EVSE 1 at 2025-01-01T10:00:02.000Z"])
    flagged_at: datetime


class SessionOut(BaseModel):
    """One charging session, version-neutral (a 1.6 transaction or 2.x TransactionEvents)."""

    model_config = ConfigDict(from_attributes=True)

    session_id: str = Field(examples=["6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"])
    station_id: str = Field(examples=["CP-001"])
    evse_id: int | None = Field(examples=[1])
    connector_id: int | None = Field(examples=[1])
    transaction_id: str = Field(examples=["42"], description="the OCPP transaction id")
    ocpp_version: str | None = Field(examples=["2.0.1"])
    id_token: str | None = Field(examples=["04A2B3C4D5E6F7"])
    id_token_type: str | None = Field(examples=["ISO14443"])
    state: SessionState
    started_at: datetime
    ended_at: datetime | None
    stop_reason: str | None = Field(examples=["ev_disconnected"])
    ocpp_stop_reason: str | None = Field(examples=["EVDisconnected"])
    trigger_reason: str | None = Field(examples=["MeterValuePeriodic"])
    charging_state: str | None = Field(examples=["Charging"])
    meter_start_wh: float | None = Field(examples=[1000.0])
    meter_stop_wh: float | None = Field(examples=[8500.0])
    energy_wh: float | None = Field(examples=[7500.0])
    power_w: float | None = Field(validation_alias="last_power_w", examples=[11000.0])
    current_a: float | None = Field(validation_alias="last_current_a", examples=[16.0])
    soc_percent: float | None = Field(examples=[54.0])
    measured_at: datetime | None
    start_seen: bool = Field(
        description="false while the session is known only from later messages"
    )
    offline: bool = Field(description="some of its messages were queued while offline")
    last_seq_no: int | None = Field(description="2.x: the highest seqNo received")
    seq_gap: bool = Field(description="2.x: some seqNo between the lowest and highest is missing")
    reservation_id: int | None
    remote_start_id: int | None
    final: bool = Field(
        description="ended with its start known: start, end and energy never change again"
    )
    flags: list[SessionFlagOut] = Field(
        description="where the station's own data disagree, or the CSMS ended the session"
    )
    late_messages: int = Field(description="messages received after the end (never applied)")
    idle_since: datetime | None = Field(
        description="the station reported the EVSE Available at this time while active"
    )
    updated_at: datetime


class SessionMessageOut(BaseModel):
    """A transaction message the session received, as sent, and what it did."""

    model_config = ConfigDict(from_attributes=True)

    action: str = Field(examples=["TransactionEvent"])
    event_type: str | None = Field(examples=["Updated"], description="2.x eventType")
    seq_no: int | None = Field(examples=[4])
    timestamp: datetime | None = Field(description="the station's time of the message")
    received_at: datetime
    disposition: MessageDisposition
    payload: dict[str, Any] = Field(description="the OCPP payload as the station sent it")


class MeterSampleOut(BaseModel):
    """One sampled value in base units (Wh, W, A, V, varh, var, Percent, Celsius, Hz)."""

    model_config = ConfigDict(from_attributes=True)

    timestamp: datetime
    measurand: str = Field(examples=["Energy.Active.Import.Register"])
    phase: str | None = None
    location: str | None = Field(default=None, examples=["Outlet"])
    context: str | None = Field(default=None, examples=["Sample.Periodic"])
    value: float | None = Field(examples=[7500.0], description="None for signed data only")
    unit: str | None = Field(examples=["Wh"])
    signed: dict[str, Any] | None = None
    raw_value: str | None = Field(default=None, description="the value as sent if not a number")
    late: bool = Field(
        default=False, description="sent after the session ended: never in its figures"
    )


class MeterSeries(BaseModel):
    session_id: str
    items: list[MeterSampleOut]


def _filtered(
    query: SelectOfScalar[Any],
    *,
    station_id: str | None,
    id_token: str | None,
    state: SessionState | None,
    started_after: datetime | None,
    started_before: datetime | None,
    caller: Principal,
) -> SelectOfScalar[Any]:
    if started_after and started_before and started_after >= started_before:
        raise Problem(422, "started_after must be before started_before", kind="invalid-filter")
    visible = visible_stations(caller)
    if visible is not None:
        query = query.where(col(ChargingSession.station_id).in_(visible))
    if station_id is not None:
        query = query.where(col(ChargingSession.station_id) == station_id)
    if id_token is not None:
        query = query.where(col(ChargingSession.id_token) == id_token)
    if state is not None:
        query = query.where(col(ChargingSession.state) == state)
    if started_after is not None:
        query = query.where(col(ChargingSession.started_at) >= started_after)
    if started_before is not None:
        query = query.where(col(ChargingSession.started_at) < started_before)
    return query


async def _page(session: SessionDep, page: PageDep, **filters: Any) -> Page[SessionOut]:
    newest_first = (col(ChargingSession.started_at).desc(), col(ChargingSession.session_id))
    query = _filtered(select(ChargingSession), **filters).order_by(*newest_first)
    rows: Sequence[ChargingSession] = (
        await session.exec(query.offset(page.offset).limit(page.limit))
    ).all()
    counted = select(func.count()).select_from(ChargingSession)
    total = (await session.exec(_filtered(counted, **filters))).one()
    items = [SessionOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/sessions", responses=problem_responses(422))
async def list_sessions(
    caller: PartnerDep,
    session: SessionDep,
    page: PageDep,
    station_id: Annotated[str | None, Query(max_length=48)] = None,
    id_token: Annotated[str | None, Query(max_length=255)] = None,
    state: StateQuery = None,
    started_after: Annotated[AwareDatetime | None, Query()] = None,
    started_before: Annotated[AwareDatetime | None, Query()] = None,
) -> Page[SessionOut]:
    """List charging sessions, newest first."""
    return await _page(
        session,
        page,
        station_id=station_id,
        id_token=id_token,
        state=state,
        started_after=started_after,
        started_before=started_before,
        caller=caller,
    )


@router.get("/sessions/{session_id}", responses=problem_responses(404, 422))
async def get_session(
    request: Request, caller: PartnerDep, session: SessionDep, session_id: SessionIdPath
) -> SessionOut:
    """Read a charging session with its latest power and energy."""
    return SessionOut.model_validate(await _visible(request, caller, session, session_id))


async def _visible(
    request: Request, caller: Principal, session: SessionDep, session_id: str
) -> ChargingSession:
    """The session, if the caller may see its station (404 as if unknown otherwise)."""
    charging = await session.get(ChargingSession, session_id)
    if charging is None or not await sees_station(request, caller, charging.station_id):
        raise Problem(404, f"no session {session_id}", kind="unknown-session")
    return charging


@router.get("/sessions/{session_id}/meter-values", responses=problem_responses(404, 422))
async def get_meter_values(
    request: Request,
    caller: PartnerDep,
    session: SessionDep,
    session_id: SessionIdPath,
    measurand: Annotated[
        str | None, Query(max_length=50, examples=["Energy.Active.Import.Register"])
    ] = None,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> MeterSeries:
    """A session's meter values in time order (``from`` inclusive, ``to`` exclusive)."""
    if since and until and since >= until:
        raise Problem(422, "from must be before to", kind="invalid-filter")
    await _visible(request, caller, session, session_id)
    samples = await metering.time_series(
        session, session_id, measurand=measurand, since=since, until=until, limit=limit
    )
    items = [MeterSampleOut.model_validate(sample) for sample in samples]
    return MeterSeries(session_id=session_id, items=items)


@router.get("/sessions/{session_id}/messages", responses=problem_responses(404, 422))
async def get_session_messages(
    request: Request,
    caller: ViewerDep,
    session: SessionDep,
    session_id: SessionIdPath,
    page: PageDep,
    disposition: Annotated[
        MessageDisposition | None, Query(description="e.g. late: what came after the end")
    ] = None,
) -> Page[SessionMessageOut]:
    """The transaction messages a session received, in arrival order, with what each did."""
    await _visible(request, caller, session, session_id)
    mine = col(SessionMessage.session_id) == session_id
    if disposition is not None:
        mine = mine & (col(SessionMessage.disposition) == disposition)
    query = select(SessionMessage).where(mine).order_by(col(SessionMessage.id))
    rows = (await session.exec(query.offset(page.offset).limit(page.limit))).all()
    counted = select(func.count()).select_from(SessionMessage).where(mine)
    total = (await session.exec(counted)).one()
    items = [SessionMessageOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/stations/{station_id}/sessions", responses=problem_responses(422))
async def list_station_sessions(
    caller: PartnerDep,
    session: SessionDep,
    station_id: StationIdDep,
    page: PageDep,
    state: StateQuery = None,
) -> Page[SessionOut]:
    """List one station's charging sessions, newest first (``state=active``: the ongoing ones)."""
    return await _page(
        session,
        page,
        station_id=station_id,
        id_token=None,
        state=state,
        started_after=None,
        started_before=None,
        caller=caller,
    )
