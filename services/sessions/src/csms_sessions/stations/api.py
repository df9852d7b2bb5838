"""REST routes of stations: list, read, register, delete."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from csms_api.auth import AdminDep, PartnerDep, visible_stations
from csms_api.problems import Problem, problem_responses
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import TimeoutQuery
from csms_sessions.remote.calls import call, online_version
from csms_sessions.stations import service
from csms_sessions.stations.models import BootStatus, ConnectorState, ConnectorStatus, Station
from csms_sessions.stations.rotation import TAKEN, password_change, rotating

router = APIRouter(route_class=DocumentedRoute, prefix="/stations", tags=["stations"])


class ConnectorOut(BaseModel):
    """The last status of one connector (1.6 connector N is EVSE N, connector 1)."""

    model_config = ConfigDict(from_attributes=True)

    evse_id: int = Field(examples=[1])
    connector_id: int = Field(examples=[1])
    status: ConnectorState = Field(examples=["Occupied"])
    ocpp_status: str = Field(examples=["Charging"])
    error_code: str | None = Field(default=None, examples=["NoError"])
    updated_at: datetime


class StationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    station_id: str = Field(examples=["CP-001"])
    registered: bool
    vendor: str | None = Field(default=None, examples=["ACME"])
    model: str | None = Field(default=None, examples=["Wallbox 22"])
    serial_number: str | None = None
    firmware_version: str | None = Field(default=None, examples=["1.4.2"])
    ocpp_version: str | None = Field(default=None, examples=["2.0.1"])
    boot_status: BootStatus | None = None
    last_boot_at: datetime | None = None
    last_seen_at: datetime | None = None
    online: bool
    gateway_id: str | None = Field(default=None, examples=["gw-1"])
    connected_at: datetime | None = None
    disconnected_at: datetime | None = None
    created_at: datetime


class StationDetail(StationOut):
    connectors: list[ConnectorOut] = Field(default_factory=list)


class StationRegistration(BaseModel):
    """Register a station (its next boot is Accepted) and optionally set its credentials."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"password": "correct-horse-battery", "lenient": False}]},
    )

    # OCPP 2.0.1 BasicAuthPassword: 16 to 40 characters (security profiles 1 and 2).
    password: str | None = Field(default=None, min_length=16, max_length=40)
    lenient: bool | None = Field(
        default=None, description="accept schema violations a real charger commits (logged)"
    )
    security_profile: int | None = Field(
        default=None,
        ge=0,
        le=3,
        description="the lowest security profile the station may connect with: a connection "
        "offering less is refused at the handshake (403, a security event). 1 and 2 need a "
        "password; a profile upgrade raises it by itself",
    )


def _detail(station: Station, connectors: list[ConnectorStatus]) -> StationDetail:
    return StationDetail.model_validate(
        {
            **StationOut.model_validate(station).model_dump(),
            "connectors": [ConnectorOut.model_validate(c) for c in connectors],
        }
    )


@router.get("")
async def list_stations(
    caller: PartnerDep,
    session: SessionDep,
    page: PageDep,
    online: Annotated[bool | None, Query()] = None,
) -> Page[StationOut]:
    """List stations, optionally only those online."""
    stations, total = await service.list_stations(
        session,
        limit=page.limit,
        offset=page.offset,
        online=online,
        only=visible_stations(caller),
    )
    items = [StationOut.model_validate(station) for station in stations]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/{station_id}", responses=problem_responses(404, 422))
async def get_station(
    caller: PartnerDep, session: SessionDep, station_id: StationIdDep
) -> StationDetail:
    """Read a station with the last status of each connector."""
    station = await session.get(Station, station_id)
    if station is None:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    return _detail(station, list(await service.connectors_of(session, station_id)))


@router.put("/{station_id}", responses=problem_responses(422))
async def register_station(
    caller: AdminDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: StationRegistration,
) -> StationDetail:
    """Register or update a station, its credentials and its security profile."""
    if body.security_profile in (1, 2) and body.password is None:
        known = await sessions.identities.get(station_id)
        if known is None or known.password_hash is None:
            raise Problem(
                422,
                f"security profile {body.security_profile} needs a password: set one too",
                kind="password-required",
            )
    try:
        async with session.begin():
            station = await service.register(session, station_id)
    except IntegrityError:  # its first connection created the row meanwhile: mark that one
        async with session.begin():
            station = await service.register(session, station_id)
    await sessions.identities.save(
        station_id,
        password=body.password,
        lenient=body.lenient,
        security_profile=body.security_profile,
    )
    return _detail(station, list(await service.connectors_of(session, station_id)))


@router.delete("/{station_id}", status_code=204, responses=problem_responses(404, 422))
async def delete_station(
    caller: AdminDep, sessions: ServiceDep, session: SessionDep, station_id: StationIdDep
) -> Response:
    """Delete a station, its connector statuses and its credentials."""
    async with session.begin():
        existed = await service.forget(session, station_id)
    had_identity = await sessions.identities.get(station_id) is not None
    await sessions.identities.delete(station_id)
    if not (existed or had_identity):
        raise Problem(404, f"no station {station_id}", kind="unknown-station")
    return Response(status_code=204)


class PasswordRotation(BaseModel):
    """A station's new Basic auth password (OCPP 2.0.1 A01/A02; 1.6 AuthorizationKey)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "a-new-long-secret-20"}]}
    )

    password: str = Field(min_length=16, max_length=40)


class RotationOut(BaseModel):
    status: str = Field(examples=["Accepted"], description="the station's answer")
    rotated: bool = Field(
        description="the station took the new password: the old one stays valid until the "
        "station connects with the new one, then only the new one is"
    )


@router.put("/{station_id}/password", responses=problem_responses(404, 409, 422, 502, 504))
async def rotate_password(
    caller: AdminDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: PasswordRotation,
    timeout_s: TimeoutQuery = None,
) -> RotationOut:
    """Give a connected station a new password (never stored in clear, shown or logged)."""
    version = await online_version(sessions, session, station_id)
    action, payload = password_change(version, body.password)
    async with rotating(sessions.identities, station_id, body.password) as rotation:
        response = await call(sessions, station_id, version, action, payload, timeout_s)
        status = response.status or "Rejected"
        if version.is_2x:
            results = (response.response or {}).get("setVariableResult") or [{}]
            status = str(results[0].get("attributeStatus", "Rejected"))
        rotation.taken = status in TAKEN
    return RotationOut(status=status, rotated=rotation.taken)
