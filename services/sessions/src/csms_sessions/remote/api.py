"""REST routes of remote control: start, stop, unlock, transaction status."""

from fastapi import APIRouter

from csms_api.auth import OperatorDep
from csms_api.problems import problem_responses
from csms_sessions.api.deps import ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import CommandResponse, TimeoutQuery, call_station
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.remote import translate
from csms_sessions.remote.calls import (
    call,
    check_payload,
    not_in_version,
    online_version,
    translated,
)
from csms_sessions.remote.service import (
    allocate_remote_start,
    record_answer,
    transaction_of_session,
)
from csms_sessions.remote.translate import (
    RemoteStartCommand,
    RemoteStopCommand,
    TransactionStatusCommand,
    UnlockConnectorCommand,
)

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/commands",
    tags=["remote control"],
    responses=problem_responses(404, 409, 422, 502, 504),
)


@router.post("/remote-start")
async def remote_start(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: RemoteStartCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Ask a station to start charging for a token (2.x: with a remoteStartId we allocate)."""
    version = await online_version(sessions, session, station_id)
    try:  # refuse bad input before allocating an id
        check_payload(version, *translate.remote_start(body, version, remote_start_id=0))
    except Untranslatable as exc:
        raise not_in_version(exc) from exc
    request = await allocate_remote_start(sessions.factory, station_id, body)
    assert request.remote_start_id is not None  # noqa: S101 - the database assigned it
    action, payload = translate.remote_start(body, version, request.remote_start_id)
    response = await call(sessions, station_id, version, action, payload, timeout_s)
    await record_answer(sessions.factory, request, response.status)
    return response


@router.post("/remote-stop")
async def remote_stop(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: RemoteStopCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Ask a station to stop a transaction, named by its id or by our session id."""
    await online_version(sessions, session, station_id)  # 404 / 409 before the lookup below
    transaction_id = body.transaction_id or await transaction_of_session(
        sessions.factory, station_id, body.session_id or ""
    )
    build = translated(lambda version: translate.remote_stop(transaction_id, version))
    return await call_station(sessions, station_id, build, timeout_s)


@router.post("/unlock-connector")
async def unlock_connector(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: UnlockConnectorCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Ask a station to unlock a connector (e.g. a cable stuck after charging)."""
    build = translated(lambda version: translate.unlock_connector(body, version))
    return await call_station(sessions, station_id, build, timeout_s)


@router.post("/get-transaction-status")
async def get_transaction_status(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: TransactionStatusCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Ask a 2.x station whether a transaction is ongoing and messages are queued."""
    build = translated(lambda version: translate.transaction_status(body, version))
    return await call_station(sessions, station_id, build, timeout_s)
