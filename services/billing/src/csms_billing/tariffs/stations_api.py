"""``/stations/{station_id}/tariffs``: tariffs on a 2.1 station's local cost calculator.

OCPP 2.1 I07-I09 (SetDefaultTariff, GetTariffs, ClearTariffs): the CSMS gives a
station that calculates costs itself the tariff it should apply, as the 2.1
``TariffType`` translated from the OCPI tariff version in force
(``tariffs.ocpp21``). The station's tariff id is the OCPI id and the version
(``standard.v3``), so its ``costDetails`` say which version it used.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from csms_api.auth import AdminDep, OperatorDep, require_station
from csms_api.problems import Problem, ProblemRoute, problem_responses
from csms_billing.api.deps import ServiceDep, SessionDep
from csms_billing.tariffs import service
from csms_billing.tariffs.ocpp21 import Untranslatable, to_ocpp21, wire_tariff_id
from csms_core.db import utc_now
from csms_core.router import CommandOutcome, CommandResult, InvalidCommand, StationOffline
from csms_ocpp import OcppVersion

router = APIRouter(
    prefix="/stations/{station_id}/tariffs",
    tags=["billing: tariffs on stations (OCPP 2.1)"],
    route_class=ProblemRoute,
)
StationId = Annotated[str, Path(min_length=1, max_length=48, examples=["CP-001"])]
EvseQuery = Annotated[int, Query(ge=0, le=1000, description="0: the whole station")]
COMMAND_TIMEOUT_S = 30.0
_ERRORS = problem_responses(404, 409, 422, 502, 504)


class DefaultTariff(BaseModel):
    tariff_id: str = Field(min_length=1, max_length=36, examples=["standard"])
    evse_id: int = Field(default=0, ge=0, le=1000, description="0: every EVSE")


class StationAnswer(BaseModel):
    """What the station answered (``status`` where its answer has one)."""

    station_id: str
    action: str
    status: str | None
    response: dict[str, Any]


@router.post("", response_model=StationAnswer, responses=_ERRORS)
async def set_default_tariff(
    caller: AdminDep,
    request: Request,
    station_id: StationId,
    body: DefaultTariff,
    billing: ServiceDep,
    session: SessionDep,
) -> StationAnswer:
    """Give a 2.1 station a tariff to calculate costs with (SetDefaultTariff)."""
    await require_station(request, caller, station_id)
    stored = await service.get_tariff(session, body.tariff_id)
    if stored is None or stored.record.deleted_at is not None:
        raise Problem(404, f"no tariff {body.tariff_id}", kind="unknown-tariff")
    version = stored.current(utc_now())
    try:
        tariff = to_ocpp21(
            service.ocpi_tariff(version),
            wire_tariff_id(body.tariff_id, version.version),
            service.taxes_of(stored.record),
        )
    except Untranslatable as exc:
        raise Problem(422, str(exc), kind="untranslatable-tariff") from None
    payload = {"evseId": body.evse_id, "tariff": tariff.wire()}
    return await _send(billing, station_id, "SetDefaultTariff", payload)


@router.get("", response_model=StationAnswer, responses=_ERRORS)
async def get_tariffs(
    caller: OperatorDep,
    request: Request,
    station_id: StationId,
    billing: ServiceDep,
    evse_id: EvseQuery = 0,
) -> StationAnswer:
    """The tariffs a 2.1 station holds (GetTariffs)."""
    await require_station(request, caller, station_id)
    return await _send(billing, station_id, "GetTariffs", {"evseId": evse_id})


@router.delete("", response_model=StationAnswer, responses=_ERRORS)
async def clear_tariffs(
    caller: AdminDep,
    request: Request,
    station_id: StationId,
    billing: ServiceDep,
    tariff_id: Annotated[list[str] | None, Query(max_length=20)] = None,
    evse_id: Annotated[int | None, Query(ge=0, le=1000)] = None,
) -> StationAnswer:
    """Remove tariffs from a 2.1 station (ClearTariffs): the ids given, or all."""
    await require_station(request, caller, station_id)
    payload: dict[str, Any] = {}
    if tariff_id:
        payload["tariffIds"] = [t[:60] for t in tariff_id]
    if evse_id is not None:
        payload["evseId"] = evse_id
    return await _send(billing, station_id, "ClearTariffs", payload)


async def _send(
    billing: ServiceDep, station_id: str, action: str, payload: dict[str, Any]
) -> StationAnswer:
    def build(version: OcppVersion) -> tuple[str, dict[str, Any]]:
        if version is not OcppVersion.V21:
            raise Problem(
                409,
                f"{station_id} speaks OCPP {version.number}: tariffs on the station are 2.1's",
                kind="version-unsupported",
            )
        return action, payload

    try:
        result = await billing.commands.call(station_id, build, COMMAND_TIMEOUT_S)
    except StationOffline:
        raise Problem(
            409, f"no gateway holds a connection to {station_id}", kind="station-offline"
        ) from None
    except InvalidCommand as exc:  # our bug, not the caller's
        raise Problem(500, f"{action} would break its schema: {exc.description}") from exc
    return _answer(result)


def _answer(result: CommandResult) -> StationAnswer:
    reason = f"{result.error_code or ''} {result.error_description}".strip()
    if result.outcome is CommandOutcome.RESULT:
        response = result.payload or {}
        status = response.get("status")
        return StationAnswer(
            station_id=result.station_id,
            action=result.action,
            status=status if isinstance(status, str) else None,
            response=response,
        )
    if result.outcome is CommandOutcome.OFFLINE:
        raise Problem(409, f"{result.station_id} went offline", kind="station-offline")
    if result.outcome is CommandOutcome.TIMEOUT:
        raise Problem(504, f"no answer from {result.station_id} in time", kind="timeout")
    raise Problem(
        502, f"{result.station_id} answered {result.outcome.value}: {reason}", kind="station-error"
    )
