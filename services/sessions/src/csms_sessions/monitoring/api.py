"""REST routes of 2.x monitoring (OCPP 2.0.1 N02-N08): the monitors a station holds, setting
and clearing them, its monitoring base and level, monitoring reports and its events."""

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from csms_api.auth import OperatorDep, ViewerDep
from csms_api.problems import Problem, problem_responses
from csms_core.db import transaction
from csms_ocpp import OcppVersion
from csms_sessions.api.deps import PageDep, ServiceDep, SessionDep, StationIdDep
from csms_sessions.api.pagination import Page
from csms_sessions.api.routing import DocumentedRoute
from csms_sessions.commands.api import CommandResponse, TimeoutQuery
from csms_sessions.commands.translate import Untranslatable
from csms_sessions.configuration import service as device_model
from csms_sessions.configuration.api import (
    ReportOut,
    ReportResponse,
    RequestIdPath,
    chunks,
    report_of,
    reports_page,
    request_report,
)
from csms_sessions.db import utc_now
from csms_sessions.monitoring import service, translate
from csms_sessions.monitoring.models import MonitoringSetting, ref_columns
from csms_sessions.monitoring.translate import (
    ClearMonitors,
    ClearResult,
    ClearResults,
    MonitoringBaseCommand,
    MonitoringLevelCommand,
    MonitoringReportCommand,
    MonitorResult,
    MonitorResults,
    MonitorSpec,
    SetMonitors,
)
from csms_sessions.remote.calls import call, check_payload, not_in_version, online_version
from csms_sessions.service import SessionsService
from csms_sessions.stations.models import Station

router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/monitoring",
    tags=["monitoring"],
    responses=problem_responses(404, 409, 422, 502, 504),
)
events_router = APIRouter(
    route_class=DocumentedRoute,
    prefix="/stations/{station_id}/events",
    tags=["monitoring"],
    responses=problem_responses(404, 422),
)
MONITORING_REPORTS = ("GetMonitoringReport",)
MONITORING_CTRLR = "MonitoringCtrlr"  # its ItemsPerMessage[action] bounds one call (N04, N06)


class MonitorOut(BaseModel):
    """A monitor the station holds, by the id the station gave it."""

    model_config = ConfigDict(from_attributes=True)

    monitor_id: int = Field(examples=[3])
    component: str = Field(examples=["EVSE"])
    component_instance: str | None = None
    evse_id: int | None = Field(default=None, examples=[1])
    connector_id: int | None = None
    variable: str = Field(examples=["Power"])
    variable_instance: str | None = None
    type: str = Field(examples=["UpperThreshold"])
    value: float = Field(examples=[22000])
    severity: int = Field(examples=[4])
    transaction: bool
    event_notification_type: str | None = Field(default=None, description="2.1 only")
    updated_at: datetime


class MonitoringSettingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    station_id: str
    monitoring_base: str | None = Field(description="the last SetMonitoringBase accepted")
    monitoring_level: int | None = Field(description="the last SetMonitoringLevel accepted")
    updated_at: datetime | None


class StationEventOut(BaseModel):
    """An event the station notified (NotifyEvent)."""

    model_config = ConfigDict(from_attributes=True)

    event_id: int
    timestamp: datetime
    trigger: str = Field(examples=["Alerting"])
    event_notification_type: str = Field(examples=["HardWiredMonitor"])
    component: str
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    actual_value: str
    cleared: bool
    severity: int | None = Field(description="as sent (2.1), else its monitor's if known")
    variable_monitoring_id: int | None
    tech_code: str | None
    tech_info: str | None
    transaction_id: str | None
    cause: int | None
    received_at: datetime


async def _known(session: SessionDep, station_id: str) -> None:
    if await session.get(Station, station_id) is None:
        raise Problem(404, f"no station {station_id}", kind="unknown-station")


async def version_2x(
    sessions: SessionsService, session: SessionDep, station_id: str, action: str
) -> OcppVersion:
    """The version of the station's live connection (404 unknown, 409 offline), which must
    be 2.x for ``action`` (block N): else 422 not-in-this-ocpp-version."""
    version = await online_version(sessions, session, station_id)
    try:
        translate.only_2x(version, action)
    except Untranslatable as exc:
        raise not_in_version(exc) from exc
    return version


@router.get("", responses=problem_responses(404, 422))
async def list_monitors(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep, page: PageDep
) -> Page[MonitorOut]:
    """The monitors the station holds, as it reported or accepted them, by id."""
    await _known(session, station_id)
    rows, total = await service.monitors(session, station_id, page.limit, page.offset)
    items = [MonitorOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.put("")
async def set_monitors(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: SetMonitors,
    timeout_s: TimeoutQuery = None,
) -> MonitorResults:
    """Set monitors on variables (SetVariableMonitoring, split by ItemsPerMessage)."""
    version = await version_2x(sessions, session, station_id, "SetVariableMonitoring")
    check_payload(version, *translate.set_variable_monitoring(body.monitors))
    size = await device_model.items_per_message(
        session, station_id, "SetVariableMonitoring", MONITORING_CTRLR
    )
    results: list[MonitorResult] = []
    for part in chunks(body.monitors, size):
        action, payload = translate.set_variable_monitoring(part)
        response = await call(sessions, station_id, version, action, payload, timeout_s)
        answered = translate.monitor_results(
            (response.response or {}).get("setMonitoringResult", [])
        )
        async with transaction(sessions.factory) as writer:
            await service.store_monitors(writer, station_id, _accepted_rows(part, answered))
        results += answered
    return MonitorResults(items=results)


def _accepted_rows(
    requested: list[MonitorSpec], results: list[MonitorResult]
) -> list[dict[str, object]]:
    """The monitors the station accepted, with the value asked for (results name the
    variable, type and severity, not the value: matched in order on those)."""
    unmatched = list(requested)
    rows: list[dict[str, object]] = []
    for result in results:
        spec = next((s for s in unmatched if _same_monitor(s, result)), None)
        if spec is None:
            continue
        unmatched.remove(spec)
        if result.status == "Accepted" and result.id is not None:
            rows.append(
                ref_columns(spec.ref)
                | {
                    "monitor_id": result.id,
                    "type": spec.type,
                    "value": spec.value,
                    "severity": spec.severity,
                    "transaction": spec.transaction,
                    "event_notification_type": None,
                }
            )
    return rows


def _same_monitor(spec: MonitorSpec, result: MonitorResult) -> bool:
    return (spec.ref, spec.type, spec.severity) == (result.ref, result.type, result.severity)


@router.post("/clear")
async def clear_monitors(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: ClearMonitors,
    timeout_s: TimeoutQuery = None,
) -> ClearResults:
    """Clear monitors by id (ClearVariableMonitoring, split by ItemsPerMessage)."""
    version = await version_2x(sessions, session, station_id, "ClearVariableMonitoring")
    check_payload(version, *translate.clear_variable_monitoring(body.ids))
    size = await device_model.items_per_message(
        session, station_id, "ClearVariableMonitoring", MONITORING_CTRLR
    )
    results: list[ClearResult] = []
    for part in chunks(body.ids, size):
        action, payload = translate.clear_variable_monitoring(part)
        response = await call(sessions, station_id, version, action, payload, timeout_s)
        answered = translate.clear_results(
            (response.response or {}).get("clearMonitoringResult", [])
        )
        # NotFound: the station holds no such monitor (any more); neither do we then.
        gone = [r.id for r in answered if r.status in ("Accepted", "NotFound") and r.id in part]
        async with transaction(sessions.factory) as writer:
            await service.remove_monitors(writer, station_id, gone)
        results += answered
    return ClearResults(items=results)


@router.post("/report")
async def monitoring_report(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: MonitoringReportCommand | None = None,
    timeout_s: TimeoutQuery = None,
) -> ReportResponse:
    """Ask for a monitoring report (GetMonitoringReport); it follows in parts. No criteria
    and no components: every monitor (those stored and not reported are then removed)."""
    version = await version_2x(sessions, session, station_id, "GetMonitoringReport")
    request = translate.get_monitoring_report(body or MonitoringReportCommand())
    response = await request_report(
        sessions, station_id, version, timeout_s, "GetMonitoringReport", request
    )
    if response.status == "EmptyResultSet" and not request:
        async with transaction(sessions.factory) as writer:  # it holds no monitor at all
            await service.remove_all_monitors(writer, station_id)
    return response


@router.get("/reports", responses=problem_responses(404, 422))
async def list_monitoring_reports(
    caller: ViewerDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    page: PageDep,
) -> Page[ReportOut]:
    """The monitoring reports asked of a station, newest first, with their parts."""
    await _known(session, station_id)
    return await reports_page(sessions, session, station_id, page, MONITORING_REPORTS)


@router.get("/reports/{request_id}", responses=problem_responses(404, 422))
async def get_monitoring_report(
    caller: ViewerDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    request_id: RequestIdPath,
) -> ReportOut:
    """One monitoring report request: its state (complete only with every part)."""
    report = await report_of(session, station_id, request_id, MONITORING_REPORTS)
    return ReportOut.of(report, sessions.settings.report_part_timeout_s)


@router.post("/reports/{request_id}/repeat")
async def repeat_monitoring_report(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    request_id: RequestIdPath,
    timeout_s: TimeoutQuery = None,
) -> ReportResponse:
    """Ask for a monitoring report again (a new requestId), e.g. one that came incomplete."""
    report = await report_of(session, station_id, request_id, MONITORING_REPORTS)
    version = await version_2x(sessions, session, station_id, report.action)
    return await request_report(
        sessions,
        station_id,
        version,
        timeout_s,
        report.action,
        report.request,
        repeat_of=request_id,
    )


@router.get("/settings", responses=problem_responses(404, 422))
async def monitoring_settings(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep
) -> MonitoringSettingOut:
    """The monitoring base and level the station last accepted."""
    await _known(session, station_id)
    setting = await session.get(MonitoringSetting, station_id)
    if setting is None:
        return MonitoringSettingOut(
            station_id=station_id, monitoring_base=None, monitoring_level=None, updated_at=None
        )
    return MonitoringSettingOut.model_validate(setting)


@router.put("/base")
async def set_monitoring_base(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: MonitoringBaseCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Set the monitoring base (SetMonitoringBase: All, FactoryDefault, HardWiredOnly)."""
    version = await version_2x(sessions, session, station_id, "SetMonitoringBase")
    payload = {"monitoringBase": body.monitoring_base}
    response = await call(sessions, station_id, version, "SetMonitoringBase", payload, timeout_s)
    if response.status == "Accepted":
        async with transaction(sessions.factory) as writer:
            setting = await service.setting_of(writer, station_id)
            setting.monitoring_base = body.monitoring_base
            setting.updated_at = utc_now()
            if body.monitoring_base != "All":  # custom monitors are gone (OCPP 2.0.1 N03)
                await service.remove_all_but_hard_wired(writer, station_id)
    return response


@router.put("/level")
async def set_monitoring_level(
    caller: OperatorDep,
    sessions: ServiceDep,
    session: SessionDep,
    station_id: StationIdDep,
    body: MonitoringLevelCommand,
    timeout_s: TimeoutQuery = None,
) -> CommandResponse:
    """Set the severity up to which the station reports events (SetMonitoringLevel)."""
    version = await version_2x(sessions, session, station_id, "SetMonitoringLevel")
    payload = {"severity": body.severity}
    response = await call(sessions, station_id, version, "SetMonitoringLevel", payload, timeout_s)
    if response.status == "Accepted":
        async with transaction(sessions.factory) as writer:
            setting = await service.setting_of(writer, station_id)
            setting.monitoring_level = body.severity
            setting.updated_at = utc_now()
    return response


@events_router.get("")
async def list_events(
    caller: ViewerDep, session: SessionDep, station_id: StationIdDep, page: PageDep
) -> Page[StationEventOut]:
    """The events the station notified (NotifyEvent: alerts, clearings, readings), newest
    first."""
    await _known(session, station_id)
    rows, total = await service.events(session, station_id, page.limit, page.offset)
    items = [StationEventOut.model_validate(row) for row in rows]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
