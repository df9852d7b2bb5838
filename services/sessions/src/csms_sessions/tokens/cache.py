"""REST command: clear a station's authorization cache (OCPP 1.6 §5.4; 2.0.1 C11)."""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from csms_api.auth import OperatorDep
from csms_api.problems import problem_responses
from csms_ocpp import OcppVersion
from csms_sessions.api.deps import ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import CommandResponse, TimeoutQuery, send_command

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/commands",
    tags=["commands"],
    responses=problem_responses(404, 409, 422, 502, 504),
)


class ClearCacheCommand(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


def clear_cache(command: ClearCacheCommand, version: OcppVersion) -> tuple[str, dict[str, Any]]:
    return "ClearCache", {}


@router.post("/clear-cache")
async def clear_authorization_cache(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ClearCacheCommand | None = None,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Clear the station's authorization cache (ClearCache)."""
    command = body or ClearCacheCommand()
    return await send_command(sessions, session, station_id, command, clear_cache, timeout_s)
