"""REST: log requests and their files (``/api/v1/firmware/logs``,
``/api/v1/firmware/stations/{id}/logs``)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse
from sqlmodel import col, func, select

from csms_api.auth import AdminDep, CallerDep, ViewerDep, sees_station, visible_stations
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_core.router import StationOffline
from csms_firmware.api.deps import (
    LimitQuery,
    OffsetQuery,
    Page,
    ServiceDep,
    SessionDep,
)
from csms_firmware.commands import Answer, InvalidOwnPayload
from csms_firmware.logs import service as logs
from csms_firmware.logs.models import LogFile, LogRequest
from csms_firmware.logs.schemas import LogRequestIn, LogRequestOut
from csms_firmware.stations.api import StationDep
from csms_firmware.wire import NotInVersion, get_log, log_action

router = APIRouter(prefix="/firmware", tags=["diagnostics and logs"])
RequestIdPath = Annotated[int, Path(ge=1, le=2**31 - 1)]


def station_offline(station_id: str) -> Problem:
    return Problem(409, f"no gateway holds a connection to {station_id}", kind="station-offline")


@router.post(
    "/stations/{station_id}/logs", status_code=201, responses=problem_responses(404, 409, 422, 504)
)
async def request_log(
    caller: AdminDep, station: StationDep, body: LogRequestIn, service: ServiceDep
) -> LogRequestOut:
    """Ask a station to upload a log here (1.6 GetDiagnostics / GetLog, 2.x GetLog)."""
    version = await service.commands.version_of(station.station_id)
    if version is None:
        raise station_offline(station.station_id)
    try:
        action = log_action(version, body.log_type.value)
    except NotInVersion as exc:
        raise Problem(422, str(exc), kind="not-in-this-ocpp-version") from exc
    async with transaction(service.factory) as session:
        created = await logs.create_request(
            session,
            station.station_id,
            body,
            action,
            service.upload_location,
            service.settings.upload_url_ttl_s,
        )
    answer: Answer | None = None
    failure: str | None = None
    try:
        answer = await service.commands.call(
            station.station_id, lambda v: get_log(v, created.upload)
        )
    except (StationOffline, InvalidOwnPayload) as exc:
        failure = "offline" if isinstance(exc, StationOffline) else str(exc)
    else:
        failure = None if answer.answered else answer.failure
    payload = (answer.result.payload or {}) if answer is not None else {}
    filename = payload.get("fileName") or payload.get("filename")
    async with transaction(service.factory) as session:
        request = await session.get(LogRequest, created.request.request_id)
        assert request is not None  # noqa: S101 - stored above
        logs.record_answer(session, request, answer.status if answer else None, filename, failure)
    if failure == "offline":
        raise station_offline(station.station_id)
    if answer is not None and not answer.answered:
        raise Problem(
            504 if answer.result.outcome.value == "timeout" else 502,
            f"{station.station_id} did not take the request: {failure}",
            kind="station-error",
            request_id=request.request_id,
        )
    return LogRequestOut.of(request, None)


@router.get("/logs")
async def list_logs(
    caller: ViewerDep,
    session: SessionDep,
    station_id: str | None = None,
    limit: LimitQuery = 50,
    offset: OffsetQuery = 0,
) -> Page[LogRequestOut]:
    """Log requests, newest first, with the files received."""
    query = select(LogRequest)
    visible = visible_stations(caller)
    if visible is not None:
        query = query.where(col(LogRequest.station_id).in_(visible))
    if station_id is not None:
        query = query.where(LogRequest.station_id == station_id)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = list(
        await session.exec(
            query.order_by(col(LogRequest.request_id).desc()).limit(limit).offset(offset)
        )
    )
    files = {
        f.request_id: f
        for f in await session.exec(
            select(LogFile).where(col(LogFile.request_id).in_([r.request_id for r in rows]))
        )
    }
    items = [LogRequestOut.of(row, files.get(row.request_id)) for row in rows]
    return Page(items=items, total=total, limit=limit, offset=offset)


async def get_request(
    http: Request, caller: CallerDep, request_id: RequestIdPath, session: SessionDep
) -> LogRequest:
    """The log request, if its station is one the caller may see (404 otherwise)."""
    request = await session.get(LogRequest, request_id)
    if request is None or not await sees_station(http, caller, request.station_id):
        raise Problem(404, f"no log request {request_id}", kind="unknown-log-request")
    return request


LogRequestDep = Annotated[LogRequest, Depends(get_request)]


@router.get("/logs/{request_id}", responses=problem_responses(404))
async def read_log(caller: ViewerDep, request: LogRequestDep, session: SessionDep) -> LogRequestOut:
    """One log request and its file."""
    return LogRequestOut.of(request, await session.get(LogFile, request.request_id))


@router.get(
    "/logs/{request_id}/file", response_class=FileResponse, responses=problem_responses(404)
)
async def download_log(
    caller: ViewerDep, request: LogRequestDep, session: SessionDep, service: ServiceDep
) -> FileResponse:
    """The file the station uploaded."""
    file = await session.get(LogFile, request.request_id)
    path = service.store.path(file.sha256) if file is not None else None
    if file is None or path is None:
        raise Problem(
            404, f"no file was received for request {request.request_id}", kind="no-log-file"
        )
    return FileResponse(
        path, media_type=file.content_type or "application/octet-stream", filename=file.filename
    )
