"""REST routes that send a command to a station and return its answer."""

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from csms_api.auth import AdminDep, OperatorDep
from csms_api.problems import Problem, problem_responses
from csms_core.router import (
    Build,
    CommandOutcome,
    CommandResult,
    InvalidCommand,
    Reconnected,
    StationOffline,
)
from csms_ocpp import ErrorCode, OcppVersion
from csms_sessions.api.deps import ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands import translate
from csms_sessions.commands.translate import (
    ChangeAvailabilityCommand,
    RawCommand,
    ResetCommand,
    TriggerMessageCommand,
    Untranslatable,
)
from csms_sessions.service import SessionsService
from csms_sessions.stations.models import Station

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/commands",
    tags=["commands"],
    responses=problem_responses(404, 409, 422, 502, 504),
)

Command = TypeVar("Command", bound=BaseModel)
Translation = Callable[[Command, OcppVersion], tuple[str, dict[str, Any]]]
TimeoutQuery = Annotated[
    float | None,
    Query(gt=0, le=300, description="seconds to wait for the station (default: the setting)"),
]


class CommandResponse(BaseModel):
    """The station's answer to a command."""

    command_id: str = Field(examples=["5f0c9f8f0e5a4d0c9a0c3b1d2e4f6a7b"])
    action: str = Field(examples=["Reset"])
    outcome: CommandOutcome = Field(examples=["result"])
    status: str | None = Field(default=None, examples=["Accepted"], description="its status")
    response: dict[str, Any] | None = Field(default=None, examples=[{"status": "Accepted"}])


async def send_command(
    sessions: ServiceDep,
    session: SessionDep,
    station_id: str,
    command: Command,
    translation: Translation[Command],
    timeout_s: float | None,
) -> CommandResponse:
    """Translate ``command`` for the station's version and send it: the station's answer."""
    return await call_station(
        sessions, station_id, lambda version: _translated(command, translation, version), timeout_s
    )


async def call_station(
    sessions: SessionsService, station_id: str, build: Build, timeout_s: float | None = None
) -> CommandResponse:
    """Send ``build(version)`` (one route lookup); the REST answer, or its problem: 404
    unknown station, 409 offline, 422 untranslatable or invalid, 502 CALLERROR, 504 timeout."""
    try:
        result = await sessions.commands.call(
            station_id, build, timeout_s or sessions.settings.command_timeout_s
        )
    except Reconnected as exc:
        text = f"{station_id} reconnected meanwhile ({exc}); ask again"
        raise Problem(409, text, kind="station-reconnected") from exc
    except StationOffline:
        async with sessions.factory() as reader:
            known = await reader.get(Station, station_id) is not None
        raise station_offline(station_id) if known else unknown_station(station_id) from None
    except InvalidCommand as exc:
        raise invalid_command(exc) from exc
    return command_response(result)


def _translated(
    command: Command, translation: Translation[Command], version: OcppVersion
) -> tuple[str, dict[str, Any]]:
    try:
        return translation(command, version)
    except Untranslatable as exc:
        raise Problem(422, str(exc), kind="not-in-this-ocpp-version") from exc


def invalid_command(exc: InvalidCommand) -> Problem:
    """422: what the request asked for is no valid message of the station's version."""
    if exc.code is ErrorCode.NOT_IMPLEMENTED:
        text = f"{exc.action} is no OCPP {exc.version.number} message"
        return Problem(422, text, kind="unknown-action")
    if exc.code is ErrorCode.NOT_SUPPORTED:  # a station's message: the gateway refuses it too
        return Problem(422, f"{exc.action} is {exc.description}", kind="rejected")
    return Problem(422, exc.description, kind="invalid-ocpp-payload", code=exc.code)


def command_response(result: CommandResult) -> CommandResponse:
    reason = f"{result.error_code or ''} {result.error_description}".strip()
    match result.outcome:
        case CommandOutcome.RESULT:
            payload = result.payload or {}
            status = payload.get("status")
            return CommandResponse(
                command_id=result.command_id,
                action=result.action,
                outcome=result.outcome,
                status=status if isinstance(status, str) else None,
                response=payload,
            )
        case CommandOutcome.OFFLINE:
            raise station_offline(result.station_id)
        case CommandOutcome.TIMEOUT:
            raise Problem(504, f"no answer from {result.station_id} in time", kind="timeout")
        case CommandOutcome.REJECTED:
            raise Problem(422, f"the gateway refused to send it: {reason}", kind="rejected")
        case CommandOutcome.ERROR | CommandOutcome.INVALID_RESPONSE:
            raise Problem(
                502,
                f"{result.station_id} answered {result.outcome.value}: {reason}",
                kind="station-error",
                error_code=result.error_code,
            )


def unknown_station(station_id: str) -> Problem:
    return Problem(404, f"no station {station_id}", kind="unknown-station")


def station_offline(station_id: str) -> Problem:
    return Problem(409, f"no gateway holds a connection to {station_id}", kind="station-offline")


@router.post("/reset")
async def reset(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ResetCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Reset a station (or, in 2.x, one EVSE)."""
    return await send_command(sessions, session, station_id, body, translate.reset, timeout_s)


@router.post("/change-availability")
async def change_availability(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ChangeAvailabilityCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Make a station, an EVSE or a connector operative or inoperative."""
    return await send_command(
        sessions, session, station_id, body, translate.change_availability, timeout_s
    )


@router.post("/trigger-message")
async def trigger_message(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: TriggerMessageCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Ask a station to send a message now (e.g. StatusNotification)."""
    return await send_command(
        sessions, session, station_id, body, translate.trigger_message, timeout_s
    )


@router.post("/raw")
async def raw(
    caller: AdminDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: RawCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Send any OCPP call as-is, in the station's OCPP version."""
    return await send_command(sessions, session, station_id, body, translate.raw, timeout_s)
