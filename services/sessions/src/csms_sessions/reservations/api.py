"""REST routes of reservations: reserve (ReserveNow), cancel (CancelReservation), read."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.auth import OperatorDep, ViewerDep
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import CommandResponse, send_command
from csms_sessions.db import utc_now
from csms_sessions.reservations import service
from csms_sessions.reservations.models import ACTIVE, Reservation, ReservationStatus
from csms_sessions.stations.models import Station
from csms_sessions.tokens.models import TokenStatus
from csms_sessions.tokens.service import authorize, find_token

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/reservations",
    tags=["reservations"],
    responses=problem_responses(404, 422),
)

ReservationIdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="our reservation id")]


class ReservationBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"id_token": "04A2B3C4D5E6F7", "evse_id": 1, "expires_at": "2030-01-01T10:00:00Z"}
            ]
        },
    )

    id_token: str = Field(min_length=1, max_length=255)
    type: str | None = Field(
        default=None, max_length=20, description="token type (2.x); default: the stored token's"
    )
    evse_id: int | None = Field(
        default=None, ge=1, description="1.6 connectorId / 2.x evseId; absent: any"
    )
    connector_type: str | None = Field(
        default=None, max_length=20, description="2.x only, e.g. cType2"
    )
    expires_at: AwareDatetime
    group_id: str | None = Field(
        default=None, max_length=36, description="1.6 parentIdTag / 2.x groupIdToken"
    )


class ReservationOut(BaseModel):
    id: int
    station_id: str
    evse_id: int | None
    connector_type: str | None
    id_token: str
    token_type: str | None
    group_id: str | None
    expires_at: datetime
    status: ReservationStatus
    ocpp_status: str | None = Field(examples=["Accepted"], description="the station's word")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, reservation: Reservation) -> "ReservationOut":
        out = cls.model_validate(reservation.model_dump())
        out.status = reservation.effective_status
        return out


async def _reservation(session: AsyncSession, station_id: str, reservation_id: int) -> Reservation:
    reservation = await session.get(Reservation, reservation_id, populate_existing=True)
    if reservation is None or reservation.station_id != station_id:
        raise Problem(
            404, f"no reservation {reservation_id} at {station_id}", kind="unknown-reservation"
        )
    return reservation


async def _new_reservation(
    session: AsyncSession, station_id: str, body: ReservationBody
) -> Reservation:
    if await session.get(Station, station_id) is None:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    if body.expires_at <= utc_now():
        raise Problem(422, "expires_at is not in the future", kind="invalid-request")
    token = await find_token(session, body.id_token, body.type)
    decision = await authorize(session, body.id_token, body.type, station_id=station_id)
    if decision.status is not TokenStatus.ACCEPTED:
        status = decision.status.value if decision.status else "Unknown"
        raise Problem(422, f"{body.id_token} is {status} here", kind="token-not-accepted")
    return Reservation(
        station_id=station_id,
        evse_id=body.evse_id,
        connector_type=body.connector_type,
        id_token=body.id_token,
        token_type=body.type or (token.type if token and token.type != "idTag" else None),
        group_id=body.group_id or decision.group_id,
        expires_at=body.expires_at,
        status=ReservationStatus.PENDING,
    )


@router.post("", status_code=201, responses=problem_responses(404, 409, 422, 502, 504))
async def reserve(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ReservationBody,
) -> ReservationOut:
    """Reserve the station or one EVSE for a token (ReserveNow) and store the station's answer."""
    async with session.begin():
        reservation = await _new_reservation(session, station_id, body)
        session.add(reservation)
        await session.flush()  # allocates the reservation id
    command = service.ReserveNow(reservation_id=reservation.id or 0, **reservation.model_dump())
    try:
        result = await send_command(
            sessions, session, station_id, command, service.reserve_now, None
        )
    except Problem as problem:
        await _failed(sessions.factory, reservation, problem)
        raise
    async with transaction(sessions.factory) as writing:
        reservation = await _reservation(writing, station_id, reservation.id or 0)
        service.answered(reservation, result.status or "Rejected")
    return ReservationOut.of(reservation)


async def _failed(
    factory: async_sessionmaker[AsyncSession], reservation: Reservation, problem: Problem
) -> None:
    """Nothing reached the station (offline, untranslatable): forget the reservation;
    the station erred: rejected; no answer in time: it stays pending (the station may hold it)."""
    async with transaction(factory) as session:
        stored = await session.get(Reservation, reservation.id, populate_existing=True)
        if stored is None or problem.status == 504:
            return
        if problem.status == 502:
            service.answered(stored, "Error")
        else:
            await session.delete(stored)


@router.get("")
async def list_reservations(
    caller: ViewerDep,
    session: SessionDep,
    station_id: StationIdDep,
    page: PageDep,
    status: Annotated[ReservationStatus | None, Query()] = None,
) -> Page[ReservationOut]:
    """List a station's reservations, newest first, optionally of one status."""
    query = select(Reservation).where(col(Reservation.station_id) == station_id)
    rows = (await session.exec(query.order_by(col(Reservation.id).desc()))).all()
    matching = [ReservationOut.of(r) for r in rows if status in (None, r.effective_status)]
    items = matching[page.offset : page.offset + page.limit]
    return Page(items=items, total=len(matching), limit=page.limit, offset=page.offset)


@router.get("/{reservation_id}", responses=problem_responses(404, 422))
async def get_reservation(
    caller: ViewerDep,
    session: SessionDep,
    station_id: StationIdDep,
    reservation_id: ReservationIdPath,
) -> ReservationOut:
    """Read one reservation."""
    return ReservationOut.of(await _reservation(session, station_id, reservation_id))


@router.delete("/{reservation_id}", responses=problem_responses(404, 409, 422, 502, 504))
async def cancel(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    reservation_id: ReservationIdPath,
) -> ReservationOut:
    """Cancel a reservation (CancelReservation); 409 if it is over or the station refuses."""
    reservation = await _reservation(session, station_id, reservation_id)
    if reservation.effective_status not in ACTIVE:
        detail = f"reservation {reservation_id} is {reservation.effective_status.value}"
        raise Problem(409, detail, kind="reservation-not-active")
    command = service.CancelReservation(reservation_id=reservation_id)
    result: CommandResponse = await send_command(
        sessions, session, station_id, command, service.cancel_reservation, None
    )
    if result.status != "Accepted":
        detail = f"{station_id} answered {result.status}: it holds no such reservation"
        raise Problem(409, detail, kind="cancel-rejected")
    async with transaction(sessions.factory) as writing:
        reservation = await _reservation(writing, station_id, reservation_id)
        reservation.ocpp_status = "Cancelled"
        reservation.status = ReservationStatus.CANCELLED
        reservation.updated_at = utc_now()
    return ReservationOut.of(reservation)
