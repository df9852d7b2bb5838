"""Sending one CSMS-initiated call to a station whose OCPP version decides its shape.

The commands routes (``commands.api``) translate first and send after; the
routes of remote control, configuration and data transfer need the station's
version first (to allocate a remoteStartId, to choose GetConfiguration or
GetBaseReport, ...), then send one or several calls. Both share the error
mapping of ``commands.api``: 404 unknown, 409 offline, 422 untranslatable or
invalid, 502 CALLERROR, 504 timeout.
"""

from collections.abc import Callable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from csms_api.problems import Problem
from csms_core.router import Build, planned
from csms_ocpp import OcppVersion, schemas
from csms_sessions.commands.api import (
    CommandResponse,
    call_station,
    station_offline,
    unknown_station,
)
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.service import SessionsService
from csms_sessions.stations.models import Station


async def online_version(
    sessions: SessionsService, session: AsyncSession, station_id: str
) -> OcppVersion:
    """The OCPP version of the station's live connection; 404 unknown, 409 offline."""
    route = await sessions.router.lookup(station_id)
    if route is None:
        known = await session.get(Station, station_id) is not None
        raise station_offline(station_id) if known else unknown_station(station_id)
    return OcppVersion.from_number(route.ocpp_version)


def not_in_version(exc: Untranslatable) -> Problem:
    return Problem(422, str(exc), kind="not-in-this-ocpp-version")


def check_payload(version: OcppVersion, action: str, payload: dict[str, Any]) -> None:
    """422 unless the payload passes the official schema (we never send an invalid call)."""
    violation = schemas.validate(version, action, payload)
    if violation is not None:
        raise Problem(422, violation.description, kind="invalid-ocpp-payload", code=violation.code)


async def call(
    sessions: SessionsService,
    station_id: str,
    version: OcppVersion,
    action: str,
    payload: dict[str, Any],
    timeout_s: float | None = None,
) -> CommandResponse:
    """Send ``action``, planned for ``version``, through the one command path; the station's
    answer (409 if it reconnected speaking another version since the plan was made)."""
    return await call_station(sessions, station_id, planned(version, action, payload), timeout_s)


def translated(translation: Callable[[OcppVersion], tuple[str, dict[str, Any]]]) -> Build:
    """The build of a call translated for the station's version (422 where it has none)."""

    def build(version: OcppVersion) -> tuple[str, dict[str, Any]]:
        try:
            return translation(version)
        except Untranslatable as exc:
            raise not_in_version(exc) from exc

    return build
